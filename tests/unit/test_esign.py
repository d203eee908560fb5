"""Electronic signatures (SIG-2, SIG-4, REC-7, REC-8): components, window, binding, display."""

from __future__ import annotations

from datetime import timedelta

import pytest
from custos_testkit import ORIGIN

from hmi.core.errors import AuthenticationError, PermissionDenied, SignatureError
from hmi.core.esign import SignatureRequest, SigningMode

SETPOINT = SignatureRequest(
    action="write_setpoint",
    target="BR101.TEMP_SP",
    meaning="performed",
    reason="batch recipe step 3",
    old_value="37.0",
    new_value="38.5",
    units="degC",
    run_id="run-1",
    step="3 Heat",
)


@pytest.fixture
async def operator(services, make_user):
    password = await make_user("olga", "Olga Operator", "operator")
    session = await services.identity.login("olga", password, ORIGIN)
    return session, password


async def sign(services, session, password, user_id=None, request=SETPOINT):
    signature, entry = await services.esign.sign(
        session, request, password, permission="write_setpoint", user_id=user_id
    )
    await services.recorder.commit([entry])
    return signature


async def test_first_signing_needs_user_id_then_password_only(services, operator):
    session, password = operator
    assert services.esign.mode_for(session) is SigningMode.FULL
    with pytest.raises(SignatureError, match="user ID"):
        await sign(services, session, password)
    first = await sign(services, session, password, "olga")
    assert first.auth_mode == "full"
    assert services.esign.mode_for(session) is SigningMode.PASSWORD_ONLY
    second = await sign(services, session, password)
    assert second.auth_mode == "password"


async def test_signing_window_expiry_asks_for_both_components_again(services, operator, clock):
    session, password = operator
    await sign(services, session, password, "olga")
    clock.advance(timedelta(minutes=14))
    assert services.esign.mode_for(session) is SigningMode.PASSWORD_ONLY
    await sign(services, session, password)  # does not extend the window
    clock.advance(timedelta(minutes=2))
    assert services.esign.mode_for(session) is SigningMode.FULL
    with pytest.raises(SignatureError):
        await sign(services, session, password)


async def test_new_session_after_logout_needs_both_components(services, operator):
    session, password = operator
    await sign(services, session, password, "olga")
    await services.identity.logout(session)
    again = await services.identity.login("olga", password, ORIGIN)
    assert services.esign.mode_for(again) is SigningMode.FULL


async def test_another_user_cannot_sign_in_my_session(services, operator, make_user):
    session, _ = operator
    other = await make_user("sam", "Sam Supervisor", "supervisor")
    with pytest.raises(SignatureError, match="logged-in user"):
        await sign(services, session, other, "sam")


async def test_role_is_checked_before_the_password(services, make_user):
    password = await make_user("quinn", "Quinn QA", "qa")
    session = await services.identity.login("quinn", password, ORIGIN)
    with pytest.raises(PermissionDenied):
        await sign(services, session, "not even checked", "quinn")
    failures = services.store.query(
        "SELECT count(*) FROM security_events WHERE event='sign_failed'"
    )
    assert failures == [(0,)]


async def test_reason_and_known_meaning_are_required(services, operator):
    session, password = operator
    from dataclasses import replace

    with pytest.raises(SignatureError, match="reason"):
        await sign(services, session, password, "olga", replace(SETPOINT, reason="  "))
    with pytest.raises(SignatureError, match="meaning"):
        await sign(services, session, password, "olga", replace(SETPOINT, meaning="liked"))


async def test_signature_is_bound_to_exactly_what_was_signed(services, operator):
    from dataclasses import replace

    session, password = operator
    signature = await sign(services, session, password, "olga")
    assert signature.binds(SETPOINT)
    assert not signature.binds(replace(SETPOINT, new_value="39.5"))
    assert not signature.binds(replace(SETPOINT, target="BR102.TEMP_SP"))
    assert not signature.binds(replace(SETPOINT, step="4 Hold"))
    stored = services.store.query(
        "SELECT signer_name, meaning, reason, signed_content, content_digest FROM esignatures "
        "WHERE signature_id = ?",
        [signature.signature_id],
    )
    assert stored == [
        (
            "Olga Operator",
            "performed",
            "batch recipe step 3",
            SETPOINT.canonical(),
            SETPOINT.digest(),
        )
    ]


async def test_manifestation_has_printed_name_local_time_with_offset_and_meaning(
    services, operator
):
    session, password = operator
    signature = await sign(services, session, password, "olga")
    text = signature.manifestation()
    assert text.startswith("Olga Operator (olga), ")
    assert text.endswith(", performed")
    assert text.split(", ")[1][-5] in "+-"  # UTC offset such as +0000


async def test_witness_must_be_a_different_person_with_the_permission(
    services, operator, make_user
):
    _, password = operator
    sup = await make_user("sam", "Sam Supervisor", "supervisor")
    eng = await make_user("eddie", "Eddie Engineer", "engineer")
    with pytest.raises(SignatureError, match="different person"):
        await services.esign.witness(
            SETPOINT, "olga", password, ORIGIN, permission="approve_command", not_user="olga"
        )
    with pytest.raises(PermissionDenied):
        await services.esign.witness(
            SETPOINT, "eddie", eng, ORIGIN, permission="approve_command", not_user="olga"
        )
    witness, _ = await services.esign.witness(
        SETPOINT, "sam", sup, ORIGIN, permission="approve_command", not_user="olga"
    )
    assert witness.signer_id == "sam" and witness.auth_mode == "full"
    with pytest.raises(AuthenticationError):
        await services.esign.witness(
            SETPOINT, "sam", "wrong-pass-0", ORIGIN, permission="approve_command", not_user="olga"
        )
