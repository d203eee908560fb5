"""The operational-qualification checks, each against the scratch plant.

Every check names the requirement IDs it proves, says what it expects, and
returns what it saw. They run in this order; each uses its own user or its
own scratch folder where an earlier check could have changed state (the
lockout check locks ``oq-op2``, which nothing else uses). Backups are taken
by the running runtime, as its schedule takes them; restores and ``verify``
work on copies in the scratch folder, never on the live data directory.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import replace
from pathlib import Path

from hmi.core.alarm_types import AlarmState
from hmi.core.api import CaptureRequest, Credentials
from hmi.core.commands import Command
from hmi.core.errors import (
    AuthenticationError,
    HmiError,
    PasswordPolicyError,
    PermissionDenied,
    QueryRefused,
)
from hmi.core.terminals import TerminalRefused
from hmi.store import backup as bk
from hmi.store.datadir import DataDir
from hmi.store.db import Store
from hmi.store.qa import QaService
from hmi.store.recorder import StoreRecorder
from hmi.store.restore import restore
from hmi.store.tamper_probe import alter_chained_row
from hmi.store.verify import VerifyReport, verify_data_dir
from hmi.validation.oq import Check, CheckFailed, expect
from hmi.validation.scratch import CONSOLE, QA_DESK, ScratchPlant, new_password, wait_for

SETPOINT = "BR101.PH_SP"
HEATER = "BR101.HEATER_FAULT"
BY = "operational qualification (hmi validate)"


async def _refused(coro: object, error: type[Exception]) -> str:
    """Await ``coro`` and return the refusal's message; fail the check if it is not refused."""
    try:
        await coro  # type: ignore[misc]
    except error as exc:
        return str(exc)
    raise CheckFailed(f"expected {error.__name__}, but the request was accepted")


async def login_and_wrong_password(p: ScratchPlant) -> str:
    session = await p.login("oq-op1")
    expect(session.user.user_id == "oq-op1", f"session belongs to {session.user.user_id}")
    await p.api.logout(session)
    wrong = new_password()
    message = await _refused(p.api.login("oq-op1", wrong, CONSOLE), AuthenticationError)
    events = p.query(
        "SELECT terminal_id, source_address FROM security_events "
        "WHERE event = 'login_failed' AND user_id = 'oq-op1'"
    )
    expect(
        events == [(CONSOLE.terminal_id, CONSOLE.source)],
        f"failed-login events for oq-op1: {events}",
    )
    hashes = [h for (h,) in p.query("SELECT hash FROM password_hashes WHERE user_id = 'oq-op1'")]
    expect(
        hashes and all(str(h).startswith("$argon2id$") for h in hashes),
        f"stored password forms: {[str(h)[:10] for h in hashes]}",
    )
    clear = p.query(
        "SELECT count(*) FROM password_hashes WHERE hash = ? OR hash = ?",
        [p.passwords["oq-op1"], wrong],
    )
    expect(clear == [(0,)], "a password is stored in clear")
    return (
        f"login of oq-op1 opened a session; wrong password refused ({message!r}); "
        f"failure recorded at {CONSOLE.terminal_id} from {CONSOLE.source}; "
        f"{len(hashes)} stored password(s), all argon2id hashes"
    )


async def lockout_after_n_failures(p: ScratchPlant) -> str:
    n = p.services.config.security.lockout_attempts
    for _ in range(n - 1):
        await _refused(p.api.login("oq-op2", new_password(), CONSOLE), AuthenticationError)
    before = p.query("SELECT locked FROM users WHERE user_id = 'oq-op2'")
    expect(before == [(False,)], f"locked after {n - 1} failures: {before}")
    await _refused(p.api.login("oq-op2", new_password(), CONSOLE), AuthenticationError)
    after = p.query("SELECT locked FROM users WHERE user_id = 'oq-op2'")
    expect(after == [(True,)], f"after {n} failures locked = {after}")
    await _refused(p.login("oq-op2"), AuthenticationError)
    lockouts = p.query(
        "SELECT count(*) FROM security_events WHERE event = 'lockout' AND user_id = 'oq-op2'"
    )
    notes = p.query(
        "SELECT audience, kind FROM notifications WHERE subject = 'oq-op2' AND kind = 'lockout'"
    )
    expect(lockouts == [(1,)], f"lockout events: {lockouts}")
    expect(("admin", "lockout") in notes, f"administrator notifications: {notes}")
    return (
        f"not locked after {n - 1} failures; locked after {n}; the right password then "
        f"refused; 1 lockout event; administrators notified"
    )


async def password_policy(p: ScratchPlant) -> str:
    current = p.passwords["oq-qa1"]
    session = await p.login("oq-qa1", QA_DESK)
    refusals = []
    for weak in ("short1", "lettersonlypassword", "1234567890", current):
        refusals.append(
            await _refused(p.api.change_password(session, current, weak), PasswordPolicyError)
        )
    await p.api.logout(session)
    again = await p.login("oq-qa1", QA_DESK)
    await p.api.logout(again)
    return "refused: " + "; ".join(refusals) + "; the password in force is unchanged"


async def signed_setpoint(p: ScratchPlant) -> str:
    api = p.api
    commands = p.runtime.commands
    assert commands is not None
    op = await p.login("oq-op1")
    old = float(p.value(SETPOINT))  # type: ignore[arg-type]
    target = 7.2 if abs(old - 7.2) > 0.05 else 7.1
    reason = "operational qualification"
    expect(api.signing_needs_user_id(op), "first signing did not ask for the user ID")
    preview = await api.preview_write(op, CONSOLE, SETPOINT, target, reason)
    result = await commands.execute(
        op,
        CONSOLE,
        Command("write_setpoint", SETPOINT, target, reason),
        p.credentials("oq-op1"),
        shown=preview.digest,
    )
    expect(result.outcome == "done", f"outcome {result.outcome}")
    expect(
        result.read_back is not None and abs(float(result.read_back) - target) < 1e-3,
        f"read back {result.read_back}",
    )
    plc = p.plc.get("PH_SP")
    expect(abs(float(plc) - target) < 1e-3, f"PLC holds {plc}")
    expect(len(result.signatures) == 1, f"{len(result.signatures)} signatures")
    (signature,) = result.signatures
    manifestation = signature.manifestation()
    expect(
        "OQ Operator One" in manifestation
        and "performed" in manifestation
        and re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4}", manifestation),
        f"manifestation {manifestation!r}",
    )
    expect(signature.binds(preview.request), "the signature does not bind what was shown")
    changed = replace(preview.request, new_value=str(target + 0.1))
    expect(not signature.binds(changed), "the signature also binds a changed request")
    audit = p.query(
        "SELECT actor_id, actor_name, terminal_id, source_address, old_value, new_value, reason, "
        "signature_ids FROM audit_trail WHERE target = ? AND outcome = 'done' "
        "ORDER BY seq DESC LIMIT 1",
        [SETPOINT],
    )
    expect(
        audit
        and audit[0][:4] == ("oq-op1", "OQ Operator One", CONSOLE.terminal_id, CONSOLE.source)
        and audit[0][5] == str(target)
        and audit[0][6] == reason
        and audit[0][7] == signature.signature_id,
        f"audit row {audit}",
    )
    stored = p.query(
        "SELECT signer_name, meaning, content_digest FROM esignatures WHERE signature_id = ?",
        [signature.signature_id],
    )
    expect(stored == [("OQ Operator One", "performed", preview.digest)], f"signature row {stored}")
    expect(
        not api.signing_needs_user_id(op),
        "a later signing in the same session still asks for the user ID",
    )
    # What the signer saw is what is signed: a request that differs from it is refused.
    count = p.query("SELECT count(*) FROM esignatures WHERE signer_id = 'oq-op1'")
    shown = await api.preview_write(op, CONSOLE, SETPOINT, 7.3, reason)
    refusal = await _refused(
        commands.execute(
            op,
            CONSOLE,
            Command("write_setpoint", SETPOINT, 7.4, reason),
            Credentials(p.passwords["oq-op1"]),
            shown=shown.digest,
        ),
        HmiError,
    )
    after = p.query("SELECT count(*) FROM esignatures WHERE signer_id = 'oq-op1'")
    expect(after == count, f"signatures before/after the changed request: {count} / {after}")
    await api.logout(op)
    return (
        f"{SETPOINT} {old:g} → {target:g} written, read back {result.read_back}; "
        f"manifestation {manifestation!r}; audit row attributed to oq-op1 at "
        f"{CONSOLE.terminal_id} with reason and signature ID; signature binds the request shown "
        f"and not a changed one; second signing needs the password only; a request that differs "
        f"from what was shown was refused unsigned ({refusal!r})"
    )


async def authority_and_terminal(p: ScratchPlant) -> str:
    commands = p.runtime.commands
    assert commands is not None
    before = p.plc.get("PH_SP")
    command = Command("write_setpoint", SETPOINT, 6.9, "operational qualification")
    qa = await p.login("oq-qa1", QA_DESK)
    wrong = Credentials(new_password(), "oq-qa1")
    denied = await _refused(commands.execute(qa, QA_DESK, command, wrong), PermissionDenied)
    failures = p.query("SELECT failed_attempts FROM users WHERE user_id = 'oq-qa1'")
    expect(failures == [(0,)], f"the password was checked before the role: {failures}")
    sup = await p.login("oq-sup1", QA_DESK)
    terminal = await _refused(
        commands.execute(sup, QA_DESK, command, p.credentials("oq-sup1")), TerminalRefused
    )
    refused = p.query(
        "SELECT actor_id, terminal_id FROM audit_trail WHERE outcome = 'refused' "
        "AND target = ? AND actor_id IN ('oq-qa1', 'oq-sup1') ORDER BY seq",
        [SETPOINT],
    )
    expect(
        refused == [("oq-qa1", QA_DESK.terminal_id), ("oq-sup1", QA_DESK.terminal_id)],
        f"refusals recorded: {refused}",
    )
    expect(p.plc.get("PH_SP") == before, "the PLC value changed")
    await p.api.logout(qa)
    await p.api.logout(sup)
    return (
        f"QA role refused before its password was checked ({denied!r}); supervisor at "
        f"{QA_DESK.terminal_id} refused ({terminal!r}); both refusals recorded; PLC unchanged"
    )


async def sequencing_refusal(p: ScratchPlant) -> str:
    desk = p.api.procedures
    expect(desk is not None, "the reference plant has no procedures")
    assert desk is not None
    op = await p.login("oq-op1")
    run = await desk.start(op, CONSOLE, "sample-imaging")
    request = CaptureRequest(
        "MIC1.CAM", "out of sequence", p.credentials("oq-op1"), run_id=run.run_id
    )
    message = await _refused(p.api.capture(op, CONSOLE, request), HmiError)
    expect("step" in message, f"the refusal does not say which step: {message!r}")
    rows = p.query(
        "SELECT action, outcome, actor_id, step FROM audit_trail WHERE run_id = ? "
        "AND outcome = 'refused'",
        [run.run_id],
    )
    expect(
        len(rows) == 1 and rows[0][:3] == ("capture_image", "refused", "oq-op1"),
        f"refusals recorded for the run: {rows}",
    )
    captured = p.query("SELECT count(*) FROM captures WHERE run_id = ?", [run.run_id])
    expect(captured == [(0,)], f"captures in the run: {captured}")
    await p.api.logout(op)
    return (
        f"run {run.run_id} in step {run.step_number}: capture refused ({message!r}); "
        f"refusal recorded {rows[0][:3]}; no image taken"
    )


def _journal(p: ScratchPlant) -> list[tuple[object, ...]]:
    engine = p.runtime.alarms
    flush = getattr(getattr(engine, "journal", None), "flush", None)
    if callable(flush):
        flush()
    return p.query(
        "SELECT event, from_state, to_state, actor_id FROM alarm_journal WHERE alarm_id = ? "
        "ORDER BY seq",
        [HEATER],
    )


async def alarm_life_cycle(p: ScratchPlant) -> str:
    engine = p.runtime.alarms
    desk = p.api.alarms
    expect(engine is not None and desk is not None, "the runtime has no alarms")
    assert engine is not None and desk is not None
    op = await p.login("oq-op1")
    p.plc.set("HEATER_FAULT", True)
    await wait_for(lambda: engine.get(HEATER).state is AlarmState.UNACK_ACTIVE, 20, "alarm active")
    view = await desk.acknowledge(op, CONSOLE, HEATER, "operational qualification")
    expect(engine.get(HEATER).state is AlarmState.ACK_ACTIVE, f"after acknowledge: {view}")
    p.plc.set("HEATER_FAULT", False)
    await wait_for(lambda: engine.get(HEATER).state is AlarmState.NORMAL, 20, "alarm cleared")
    want = [
        ("activate", "NORMAL", "UNACK_ACTIVE"),
        ("acknowledge", "UNACK_ACTIVE", "ACK_ACTIVE"),
        ("clear", "ACK_ACTIVE", "NORMAL"),
    ]
    await wait_for(lambda: len(_journal(p)) >= 3, 20, "three journal rows")
    rows = _journal(p)
    expect([r[:3] for r in rows] == want, f"journal {rows}")
    expect(rows[1][3] == "oq-op1", f"acknowledged by {rows[1][3]}")
    await p.api.logout(op)
    return "journal: " + "; ".join(f"{e} {a}→{b} by {who}" for e, a, b, who in rows)


def _offline_restore(p: ScratchPlant, backup_dir: Path, target: Path) -> VerifyReport:
    """``hmi restore``: verify the backup, restore into a new directory, record it there."""
    report = restore(backup_dir, target, DataDir(p.data).keys)
    with Store.open(target) as store:
        detail = f"restored into {target} by {BY}; verified: {report.summary()}"
        StoreRecorder(store).commit_now(
            [bk.audit_entry("restore", "done", CONSOLE, backup_dir, detail)]
        )
        store.checkpoint_now()
    return report


async def _runtime_backup(p: ScratchPlant) -> bk.BackupResult:
    """One backup by the running runtime, as its schedule takes them (recorded either way)."""
    backups = p.runtime.backups
    expect(backups is not None, "the runtime has no backup service")
    assert backups is not None
    result = await backups.run_once()
    if result is None:
        failed = p.query(
            "SELECT detail FROM audit_trail WHERE action = 'backup' AND outcome = 'failed' "
            "ORDER BY seq DESC LIMIT 1"
        )
        raise CheckFailed(f"the backup failed: {failed[0][0] if failed else 'no record'}")
    return result


async def tamper_detection(p: ScratchPlant) -> str:
    taken = await _runtime_backup(p)
    copy = p.scratch_dir("tamper") / "copy"
    await asyncio.to_thread(_offline_restore, p, taken.path, copy)
    clean = await asyncio.to_thread(verify_data_dir, copy)
    expect(clean.ok, f"the copy does not verify before the change: {clean.problems[:3]}")
    seq = 2
    changed = await asyncio.to_thread(
        alter_chained_row, DataDir(copy).database, "audit_records", seq, "actor_id", "mallory"
    )
    expect(changed == 1, f"{changed} rows changed")
    report = await asyncio.to_thread(verify_data_dir, copy)
    named = [str(x) for x in report.problems if x.table == "audit_records" and x.seq == seq]
    expect(not report.ok and named, f"verify after the change: {report.problems[:3]}")
    return f"copy verified ({clean.summary()}); after changing audit_records seq {seq}: {named[0]}"


async def backup_and_restore(p: ScratchPlant) -> str:
    taken = await _runtime_backup(p)
    dest = p.scratch_dir("restore")
    restored = dest / "restored"
    report = await asyncio.to_thread(_offline_restore, p, taken.path, restored)
    expect(report.ok, f"restore verification: {report.problems[:3]}")
    again = await asyncio.to_thread(verify_data_dir, restored)
    expect(again.ok, f"restored directory: {again.problems[:3]}")
    expect(
        again.rows.get("audit_records", 0) == report.rows.get("audit_records", 0) + 1,
        f"audit rows: in the backup {report.rows.get('audit_records')}, restored "
        f"{again.rows.get('audit_records')} (the restore adds one)",
    )
    backups = p.query(
        "SELECT count(*) FROM audit_trail WHERE action = 'backup' AND outcome = 'done' "
        "AND target = ?",
        [f"backup:{taken.path}"],
    )
    with Store.open(restored) as store:
        restores = store.query(
            "SELECT count(*) FROM audit_trail WHERE action = 'restore' AND outcome = 'done'"
        )
    expect(
        backups == [(1,)] and restores == [(1,)],
        f"backup rows in the source: {backups}; restore rows in the restored copy: {restores}",
    )
    # A backup changed after it was taken is refused, naming the file, and nothing is written.
    bad = dest / "tampered"
    shutil.copytree(taken.path, bad)
    database = bad / DataDir(p.data).database.name
    raw = bytearray(database.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    database.write_bytes(bytes(raw))
    target = dest / "restored-from-tampered"
    refusal = await _refused(asyncio.to_thread(_offline_restore, p, bad, target), HmiError)
    expect(database.name in refusal, f"the refusal does not name the file: {refusal!r}")
    expect(not target.exists(), "a refused restore left a data directory")
    return (
        f"backup of {taken.files} files (recorded) restored into a new directory, verified "
        f"and recorded ({again.summary()}); a changed backup was refused ({refusal!r})"
    )


async def qa_query_guard(p: ScratchPlant) -> str:
    service = QaService(p.services)
    qa = await p.login("oq-qa1", QA_DESK)
    count = p.query("SELECT count(*) FROM audit_records")
    result = await service.run(qa, "SELECT count(*) AS n FROM audit_trail")
    expect(result.row_count == 1, f"the read query returned {result.row_count} rows")
    writes = (
        "DELETE FROM audit_records",
        "UPDATE user_accounts SET full_name = 'x'",
        "DROP TRIGGER audit_records_no_update ON audit_records",
        "CREATE TABLE oq_probe AS SELECT 1",
    )
    for sql in writes:
        await _refused(service.run(qa, sql), QueryRefused)
    recorded = p.query(
        "SELECT sql_text, outcome FROM qa_queries WHERE actor_id = 'oq-qa1' ORDER BY seq"
    )
    outcomes = {sql: outcome for sql, outcome in recorded}
    expect(
        all(outcomes.get(sql) == "refused" for sql in writes)
        and outcomes.get("SELECT count(*) AS n FROM audit_trail") == "ok",
        f"recorded queries: {recorded}",
    )
    expect(p.query("SELECT count(*) FROM audit_records") >= count, "audit rows went missing")
    await p.api.logout(qa)
    return (
        f"read query ran (1 row); {len(writes)} write statements refused; all "
        f"{len(recorded)} queries recorded with their author oq-qa1"
    )


CHECKS: tuple[Check, ...] = (
    Check(
        "OQ-01",
        ("REC-4", "PWD-1", "PWD-3"),
        "Login",
        "Log in with the right password, then try a wrong one.",
        "A session opens for the right password; the wrong one is refused with a message that "
        "reveals nothing, recorded with terminal and source; passwords are stored only as "
        "argon2id hashes.",
        login_and_wrong_password,
    ),
    Check(
        "OQ-02",
        ("PWD-3",),
        "Account lockout",
        "Fail the login of one account as many times as the policy allows.",
        "Not locked after N-1 failures, locked after N; the right password is then refused; "
        "the lockout is recorded and administrators are notified.",
        lockout_after_n_failures,
    ),
    Check(
        "OQ-03",
        ("PWD-2",),
        "Password policy",
        "Change a password to a short one, one without digits, one without letters, and the "
        "current one.",
        "Each is refused with the rule it breaks; the password in force still works.",
        password_policy,
    ),
    Check(
        "OQ-04",
        ("SUP-8", "REC-5", "REC-7", "REC-8", "SIG-2"),
        "Signed setpoint",
        "Write a setpoint under electronic signature through the command service, then "
        "submit a request that differs from the one shown to the signer.",
        "The value reaches the PLC and reads back; the audit trail attributes it with reason "
        "and signature; the manifestation shows printed name, local time with offset and "
        "meaning; the signature binds the request shown and not a changed one; a second "
        "signing needs the password only; the differing request is refused unsigned.",
        signed_setpoint,
    ),
    Check(
        "OQ-05",
        ("REC-4", "SIG-4", "SUP-9"),
        "Authority and terminal checks",
        "A QA user and a supervisor at the QA desk try to write a setpoint.",
        "The QA user is refused for the role before the password is checked; the supervisor "
        "is refused for the terminal; both refusals are recorded; nothing is written.",
        authority_and_terminal,
    ),
    Check(
        "OQ-06",
        ("SUP-7",),
        "Sequencing refusal",
        "Start the sample-imaging procedure and ask for a capture in step 1.",
        "The capture is refused with the step where it is allowed; the refusal is recorded "
        "with the run; no image is taken.",
        sequencing_refusal,
    ),
    Check(
        "OQ-07",
        ("SUP-6",),
        "Alarm life cycle",
        "Raise the heater fault on the simulated PLC, acknowledge it, clear it.",
        "The alarm goes UNACK_ACTIVE → ACK_ACTIVE → NORMAL and the journal holds each "
        "transition with its actor.",
        alarm_life_cycle,
    ),
    Check(
        "OQ-08",
        ("SUP-11",),
        "QA query guard",
        "Run a read query and four write statements as QA.",
        "The read runs; every write is refused; every query is recorded with its author.",
        qa_query_guard,
    ),
    Check(
        "OQ-09",
        ("REC-1",),
        "Tamper detection",
        "Copy the records (a backup by the running runtime, restored), change one chained audit "
        "row directly in the copy's database file, verify the copy.",
        "The copy verifies before the change; afterwards verify fails and names the table and "
        "sequence number of the changed row.",
        tamper_detection,
    ),
    Check(
        "OQ-10",
        ("REC-3", "OPS-3"),
        "Backup and restore",
        "Back up the running instance as a scheduled backup does, restore into a new "
        "directory, verify; then restore a backup whose database file was changed.",
        "Backup and restore are recorded; the restore verifies and holds every audit row; the "
        "changed backup is refused, naming the file, and no directory is written.",
        backup_and_restore,
    ),
)
