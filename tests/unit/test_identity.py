"""Identity rules (SIG-1, SIG-3, PWD-1..4): accounts, passwords, lockout, sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from custos_testkit import ADMIN_ID, ADMIN_PASSWORD, ADMIN_TEMP, ORIGIN, activate

from hmi.core.errors import (
    AuthenticationError,
    HmiError,
    PasswordChangeRequired,
    PasswordPolicyError,
    PermissionDenied,
    SessionEnded,
)
from hmi.core.useradmin import Credentials

ADMIN = Credentials(ADMIN_PASSWORD, ADMIN_ID)


def events(services, event: str) -> list[tuple]:
    return services.store.query(
        "SELECT user_id, terminal_id, source_address, detail FROM security_events "
        "WHERE event = ? ORDER BY seq",
        [event],
    )


async def test_first_admin_is_audited_and_must_change_temporary_password(services):
    created = services.store.query(
        "SELECT actor_id, action, target FROM audit_trail WHERE action = 'add_user'"
    )
    assert created == [("system", "add_user", f"user:{ADMIN_ID}")]
    session = await services.identity.login(ADMIN_ID, ADMIN_TEMP, ORIGIN)
    assert session.password_change_required
    with pytest.raises(PasswordChangeRequired):
        services.identity.require_session(session)
    await services.identity.change_password(session, ADMIN_TEMP, ADMIN_PASSWORD)
    assert services.identity.require_session(session) is session


async def test_passwords_are_stored_only_as_argon2id_hashes(services, admin_session):
    rows = services.store.query("SELECT hash FROM password_hashes")
    assert rows and all(r[0].startswith("$argon2id$") for r in rows)
    dump = str(services.store.query("SELECT * FROM password_hashes")) + str(
        services.store.query("SELECT * FROM audit_trail")
    )
    assert ADMIN_PASSWORD not in dump and ADMIN_TEMP not in dump
    columns = [r[0] for r in services.store.query("DESCRIBE users")]
    assert not [c for c in columns if "hash" in c]


async def test_login_failure_message_reveals_nothing(services, make_user):
    await make_user("olga", "Olga Operator", "operator")
    messages = set()
    for user_id, password in [("olga", "wrong1234"), ("nobody", "wrong1234")]:
        with pytest.raises(AuthenticationError) as err:
            await services.identity.login(user_id, password, ORIGIN)
        messages.add(err.value.message)
    assert len(messages) == 1
    failed = events(services, "login_failed")
    assert [(r[0], r[1], r[2]) for r in failed] == [
        ("olga", ORIGIN.terminal_id, ORIGIN.source),
        ("nobody", ORIGIN.terminal_id, ORIGIN.source),
    ]


async def test_lockout_after_exactly_n_failures_notifies_admins(services, make_user, tmp_path):
    password = await make_user("olga", "Olga Operator", "operator")
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            await services.identity.login("olga", "bad-guess-1", ORIGIN)
    session = await services.identity.login("olga", password, ORIGIN)  # resets the count
    await services.identity.logout(session)
    for _ in range(3):
        with pytest.raises(AuthenticationError) as err:
            await services.identity.login("olga", "bad-guess-1", ORIGIN)
    locked_message = err.value.message
    with pytest.raises(AuthenticationError) as err:
        await services.identity.login("olga", password, ORIGIN)
    assert err.value.message == locked_message  # a locked account looks like any failure
    assert services.store.query("SELECT locked FROM users WHERE user_id = 'olga'") == [(True,)]
    assert [r[0] for r in events(services, "lockout")] == ["olga"]
    notes = services.store.query("SELECT audience, kind, subject, message FROM notifications")
    assert [(a, k, s) for a, k, s, _ in notes] == [("admin", "lockout", "olga")]
    assert ORIGIN.terminal_id in notes[0][3]


async def test_lockout_hook_is_told_user_id_and_origin_once(services, make_user):
    await make_user("olga", "Olga Operator", "operator")
    told: list[tuple[str, object]] = []
    services.identity.on_lockout = lambda user_id, origin: told.append((user_id, origin))
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            await services.identity.login("nobody", "bad-guess-1", ORIGIN)
    for _ in range(4):
        with pytest.raises(AuthenticationError):
            await services.identity.login("olga", "bad-guess-1", ORIGIN)
    assert told == [("olga", ORIGIN)]  # unknown IDs never lock; a locked account locks once


async def test_failures_at_login_and_signing_count_together(services, make_user):
    from hmi.core.esign import SignatureRequest

    password = await make_user("olga", "Olga Operator", "operator")
    session = await services.identity.login("olga", password, ORIGIN)
    with pytest.raises(AuthenticationError):
        await services.identity.login("olga", "nope-nope-1", ORIGIN)
    request = SignatureRequest("write_setpoint", "BR101.TEMP_SP", "performed", "test", "37", "38")
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            await services.esign.sign(
                session, request, "nope-nope-1", permission="write_setpoint", user_id="olga"
            )
    assert services.store.query("SELECT locked FROM users WHERE user_id='olga'") == [(True,)]
    assert len(events(services, "sign_failed")) == 2


async def test_lockout_runs_configured_notification_hook(tmp_path, clock):
    from custos_testkit import CHEAP_SECURITY, write_config

    from hmi.bootstrap import init_data_dir

    out = tmp_path / "mail.txt"
    security = CHEAP_SECURITY.replace(
        "[argon2]", f'[notify]\ncommand = ["sh", "-c", "cat >> {out}"]\n[argon2]'
    )
    cfg = write_config(tmp_path / "cfg", security)
    svc = await init_data_dir(tmp_path / "d", cfg, "admin1", "Ada", ADMIN_TEMP, ORIGIN, clock=clock)
    try:
        for _ in range(3):
            with pytest.raises(AuthenticationError):
                await svc.identity.login("admin1", "wrong-pass-1", ORIGIN)
        assert "lockout" in out.read_text() and "admin1" in out.read_text()
    finally:
        svc.close()


@pytest.mark.parametrize(
    ("password", "needs"),
    [
        ("Ab1", "at least 8 characters"),
        ("abcdefghij", "digit"),
        ("1234567890", "letter"),
        ("xolgax1234", "user ID"),
    ],
)
async def test_password_composition_rules(services, make_user, password, needs):
    current = await make_user("olga", "Olga Operator", "operator")
    session = await services.identity.login("olga", current, ORIGIN)
    with pytest.raises(PasswordPolicyError, match=needs):
        await services.identity.change_password(session, current, password)


async def test_password_history_refuses_recent_passwords(services, make_user):
    first = await make_user("olga", "Olga Operator", "operator", password="First1pass")
    session = await services.identity.login("olga", first, ORIGIN)
    sequence = ["Second2pass", "Third3pass"]
    current = first
    for new in sequence:
        await services.identity.change_password(session, current, new)
        current = new
    with pytest.raises(PasswordPolicyError, match="last 3"):
        await services.identity.change_password(session, current, first)
    await services.identity.change_password(session, current, "Fourth4pass")
    # history = 3: First1pass is now the 4th newest and may be used again
    await services.identity.change_password(session, "Fourth4pass", first)


async def test_password_expires_after_configured_days(services, make_user, clock):
    password = await make_user("olga", "Olga Operator", "operator")
    clock.advance(timedelta(days=89))
    session = await services.identity.login("olga", password, ORIGIN)
    assert not session.password_change_required
    clock.advance(timedelta(days=2))
    session = await services.identity.login("olga", password, ORIGIN)
    assert session.password_change_required
    with pytest.raises(PasswordChangeRequired):
        services.identity.require_session(session)


async def test_inactivity_timeout_warns_then_ends_session(
    services, make_user, clock, admin_session
):
    password = await make_user("olga", "Olga Operator", "operator")
    session = await services.identity.login("olga", password, ORIGIN)
    await services.identity.logout(admin_session)

    def olga(sessions):
        return [s for s in sessions if s.user_id == "olga"]

    clock.advance(500)
    assert olga(services.identity.sessions_to_warn()) == []
    services.identity.touch(session)
    clock.advance(541)
    assert olga(services.identity.sessions_to_warn()) == [session]
    assert olga(await services.identity.expire_sessions()) == []
    clock.advance(60)
    assert olga(await services.identity.expire_sessions()) == [session]
    assert not session.active and session.end_reason == "inactivity_timeout"
    with pytest.raises(SessionEnded):
        services.identity.require_session(session)
    assert [r[0] for r in events(services, "inactivity_timeout")] == ["olga"]
    row = services.store.query(
        "SELECT end_reason FROM sessions WHERE session_id = ?", [session.session_id]
    )
    assert row == [("inactivity_timeout",)]


async def test_session_status_counts_down_to_the_first_limit(services, make_user, clock):
    password = await make_user("olga", "Olga Operator", "operator")
    session = await services.identity.login("olga", password, ORIGIN)
    status = services.identity.session_status(session)
    assert (status.seconds_left, status.warning, status.ends_by) == (
        600,
        False,
        "inactivity_timeout",
    )
    clock.advance(540)
    assert services.identity.session_status(session).warning  # 60 s before (warning_before_s)
    services.identity.touch(session)
    assert services.identity.session_status(session).seconds_left == 600
    for _ in range(72):  # active for almost the maximum session length (12 h)
        clock.advance(590)
        services.identity.touch(session)
    status = services.identity.session_status(session)
    assert (status.seconds_left, status.ends_by) == (180, "session_expired")


async def test_maximum_session_length(services, make_user, clock):
    password = await make_user("olga", "Olga Operator", "operator")
    session = await services.identity.login("olga", password, ORIGIN)
    for _ in range(13):
        clock.advance(3600)
        services.identity.touch(session)
        await services.identity.expire_sessions()
    assert session.end_reason == "session_expired"


async def test_admin_acts_are_signed_and_audited(services, admin_session, make_user):
    await make_user("olga", "Olga Operator", "operator")
    temp = await services.admin.reset_password(admin_session, ADMIN, "olga", "forgotten")
    await services.admin.set_roles(admin_session, ADMIN, "olga", ("operator", "supervisor"), "x")
    rows = services.store.query(
        "SELECT a.action, a.actor_id, s.signer_name, s.meaning, s.content_digest "
        "FROM audit_trail a JOIN esignatures s ON a.signature_ids = s.signature_id "
        "WHERE a.target = 'user:olga' ORDER BY a.seq"
    )
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("add_user", ADMIN_ID, "Ada Admin", "performed"),
        ("reset_password", ADMIN_ID, "Ada Admin", "performed"),
        ("set_roles", ADMIN_ID, "Ada Admin", "performed"),
    ]
    session = await services.identity.login("olga", temp, ORIGIN)
    assert session.password_change_required


async def test_deactivated_accounts_cannot_log_in_and_ids_are_never_reused(
    services, admin_session, make_user
):
    password = await make_user("olga", "Olga Operator", "operator")
    await services.admin.deactivate(admin_session, ADMIN, "olga", "left the company")
    with pytest.raises(AuthenticationError):
        await services.identity.login("olga", password, ORIGIN)
    with pytest.raises(HmiError, match="never reused"):
        await services.admin.add_user(
            admin_session, ADMIN, "olga", "Olga Other", ("operator",), "rehire"
        )
    with pytest.raises(HmiError, match="full names are unique"):
        await services.admin.add_user(
            admin_session, ADMIN, "olga2", "Olga Operator", ("operator",), "rehire"
        )
    assert services.store.query("SELECT active FROM users WHERE user_id='olga'") == [(False,)]


async def test_unlock_by_administrator(services, admin_session, make_user):
    password = await make_user("olga", "Olga Operator", "operator")
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            await services.identity.login("olga", "wrong-pass-9", ORIGIN)
    await services.admin.unlock(admin_session, ADMIN, "olga", "identity confirmed by phone")
    session = await services.identity.login("olga", password, ORIGIN)
    assert session.active
    assert [r[0] for r in events(services, "unlock_user")] == ["olga"]


async def test_non_administrators_cannot_administer(services, make_user):
    password = await make_user("olga", "Olga Operator", "operator")
    session = await services.identity.login("olga", password, ORIGIN)
    with pytest.raises(PermissionDenied):
        await services.admin.add_user(
            session, Credentials(password, "olga"), "eve", "Eve", ("admin",), "promotion"
        )
    assert services.store.query("SELECT count(*) FROM users WHERE user_id = 'eve'") == [(0,)]


async def test_records_verify_after_identity_activity(services, make_user):
    from hmi.store.anchors import AnchorLog
    from hmi.store.verify import verify_records

    await make_user("olga", "Olga Operator", "operator")
    with services.store.reader() as cur:
        report = verify_records(
            cur, services.store.data_dir.keys, AnchorLog(services.store.data_dir.anchors)
        )
    assert report.ok, report.problems
    assert report.rows["esignature_records"] == 1


async def test_activate_helper_rejects_wrong_temporary(services):
    with pytest.raises(AuthenticationError):
        await activate(services, ADMIN_ID, "not-the-temp-1", ADMIN_PASSWORD)


def test_a_temporary_password_never_contains_the_user_id():
    from hmi.core.config import SecurityPolicy
    from hmi.core.passwords import check_password_rules, temporary_password

    policy = SecurityPolicy()
    for _ in range(300):  # a one-letter ID would turn up in most random passwords
        candidate = temporary_password(policy, "a")
        assert "a" not in candidate.lower()
        check_password_rules(policy, "a", candidate)
