"""The command service on the simulated plant: every refusal is recorded and nothing is
written; signed writes reach the PLC, read back and are attributed; second signatures by a
witness or through the approval queue (SUP-8, SUP-9, REC-4, REC-5)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from custos_testkit import ADMIN_ID, ADMIN_PASSWORD, ADMIN_TEMP, CHEAP_SECURITY, activate, until

from drivers.sim.microscope import MicroscopeServer
from drivers.sim.plc import BioreactorPLC
from hmi.bootstrap import init_data_dir
from hmi.core.api import Decision, SetpointRequest
from hmi.core.approvals import ApprovalQueue
from hmi.core.clock import FakeClock
from hmi.core.commands import Command, CommandService, Credentials
from hmi.core.errors import AuthenticationError, HmiError, PermissionDenied
from hmi.core.identity import Session
from hmi.core.records import Origin
from hmi.core.terminals import TerminalRefused
from hmi.core.useradmin import Credentials as AdminCredentials
from hmi.runtime import Runtime
from hmi.store.verify import verify_data_dir

pytestmark = pytest.mark.timeout(120)
DEMO = Path(__file__).parents[2] / "config" / "demo"
CONSOLE = Origin("T-CONSOLE-1", "local:op@host")
QA_DESK = Origin("T-QA-1", "local:qa@host")
PASSWORD = "Working9pass"
AUDIT_FIELDS = (
    "actor_id, actor_name, terminal_id, source_address, action, target, old_value, new_value, "
    "units, reason, outcome, signature_ids, run_id, step, detail"
)


@dataclass
class Plant:
    runtime: Runtime
    plc: BioreactorPLC
    data: Path

    @property
    def commands(self) -> CommandService:
        assert self.runtime.commands is not None
        return self.runtime.commands

    @property
    def approvals(self) -> ApprovalQueue:
        assert self.runtime.approvals is not None
        return self.runtime.approvals

    async def login(self, user_id: str, origin: Origin = CONSOLE) -> Session:
        return await self.runtime.services.identity.login(user_id, PASSWORD, origin)

    def audit(self, where: str = "TRUE", params: list[object] | None = None) -> list[tuple]:
        return self.runtime.services.store.query(
            f"SELECT {AUDIT_FIELDS} FROM audit_trail WHERE {where} ORDER BY seq", params
        )

    def value(self, tag: str) -> object:
        return self.runtime.plant.table.get(tag).value


@pytest.fixture
async def plant(tmp_path: Path) -> AsyncIterator[Plant]:
    async with (
        BioreactorPLC(host="127.0.0.1", port=0) as plc,
        MicroscopeServer(host="127.0.0.1", port=0) as mic,
    ):
        config = tmp_path / "config"
        shutil.copytree(DEMO, config)
        devices = (config / "devices.toml").read_text()
        devices = devices.replace("port = 15020", f"port = {plc.port}")
        devices = devices.replace('"opc.tcp://127.0.0.1:14840"', f'"{mic.url}"')
        (config / "devices.toml").write_text(devices)
        (config / "security.toml").write_text(CHEAP_SECURITY)
        data = tmp_path / "data"
        services = await init_data_dir(data, config, ADMIN_ID, "Ada Admin", ADMIN_TEMP, CONSOLE)
        try:
            await activate(services, ADMIN_ID, ADMIN_TEMP, ADMIN_PASSWORD)
            admin = await services.identity.login(ADMIN_ID, ADMIN_PASSWORD, CONSOLE)
            for user_id, name, role in (
                ("op1", "Olga Operator", "operator"),
                ("sup1", "Sam Supervisor", "supervisor"),
                ("sup2", "Sue Supervisor", "supervisor"),
                ("qa1", "Quinn Quality", "qa"),
            ):
                temp = await services.admin.add_user(
                    admin, AdminCredentials(ADMIN_PASSWORD, ADMIN_ID), user_id, name, (role,), "t"
                )
                await activate(services, user_id, temp, PASSWORD)
            await services.identity.logout(admin)
        finally:
            services.close()
        runtime = Runtime(data, config)
        await runtime.start()
        try:
            table = runtime.plant.table
            for tag in ("BR101.TEMP_SP", "BR101.PH_SP", "BR101.AGITATOR_RUN"):
                await until(lambda t=tag: table.get(t).quality.value == "GOOD", what=tag)
            await asyncio.sleep(1.0)  # the rate-of-change limit counts from start-up
            yield Plant(runtime, plc, data)
        finally:
            await runtime.stop()
    report = verify_data_dir(data)
    assert report.ok, report.problems


def ph(value: float, reason: str = "raise pH for growth phase") -> Command:
    return Command("write_setpoint", "BR101.PH_SP", value, reason)


def temp(value: float, reason: str = "warm up for inoculation") -> Command:
    return Command("write_setpoint", "BR101.TEMP_SP", value, reason)


async def test_each_refusal_is_recorded_and_nothing_is_written(plant: Plant):
    svc = plant.commands
    op = await plant.login("op1")
    sig = Credentials(PASSWORD, "op1")

    qa = await plant.login("qa1", QA_DESK)
    with pytest.raises(PermissionDenied):
        await svc.execute(qa, QA_DESK, ph(7.2), Credentials(PASSWORD, "qa1"))

    sup_at_qa = await plant.login("sup1", QA_DESK)
    with pytest.raises(TerminalRefused, match="not allowed from terminal T-QA-1"):
        await svc.execute(sup_at_qa, QA_DESK, ph(7.2), Credentials(PASSWORD, "sup1"))

    imaging = Origin("T-IMAGING-1", "local:op@host")
    op_imaging = await plant.login("op1", imaging)
    with pytest.raises(TerminalRefused, match="Area 'bioreactor'"):
        await svc.execute(op_imaging, imaging, ph(7.2), sig)

    elsewhere = Origin("T-CONSOLE-1", "ssh:192.168.7.7 (op)")
    with pytest.raises(TerminalRefused, match="session was started at terminal"):
        await svc.execute(op, elsewhere, ph(7.2), sig)
    op_remote = await plant.login("op1", elsewhere)
    with pytest.raises(TerminalRefused, match="may not be used from"):
        await svc.execute(op_remote, elsewhere, ph(7.2), sig)

    with pytest.raises(HmiError, match="outside the allowed range"):
        await svc.execute(op, CONSOLE, ph(9.0), sig)
    with pytest.raises(HmiError, match="too fast"):
        await svc.execute(op, CONSOLE, temp(44.0), sig)
    with pytest.raises(HmiError, match="read-only"):
        await svc.execute(op, CONSOLE, Command("write_setpoint", "BR101.TEMP_PV", 30.0, "x"), sig)

    with pytest.raises(AuthenticationError):
        await svc.execute(op, CONSOLE, ph(7.2), Credentials("wrong-password1", "op1"))
    user = await plant.runtime.services.recorder.get_user("op1")
    assert user is not None and user.failed_attempts == 1

    refused = plant.audit("outcome = 'refused'")
    assert len(refused) == 9
    assert {r[0] for r in refused} == {"qa1", "sup1", "op1"}
    assert all(r[10] == "refused" and r[14] for r in refused)
    assert not plant.audit("outcome IN ('attempt', 'done') AND target LIKE 'BR101.%'")
    assert plant.plc.get("PH_SP") == pytest.approx(7.0)
    assert plant.plc.get("TEMP_SP") == pytest.approx(37.0)


async def test_a_signed_setpoint_reaches_the_plc_and_is_attributed(plant: Plant):
    op = await plant.login("op1")
    result = await plant.commands.execute(op, CONSOLE, ph(7.2), Credentials(PASSWORD, "op1"))
    assert result.outcome == "done" and result.read_back == pytest.approx(7.2)
    assert plant.plc.get("PH_SP") == pytest.approx(7.2)
    (signature,) = result.signatures

    rows = plant.audit("target = 'BR101.PH_SP'")
    assert [r[10] for r in rows] == ["attempt", "done"]
    done = rows[-1]
    assert done[:11] == (
        "op1",
        "Olga Operator",
        "T-CONSOLE-1",
        "local:op@host",
        "write_setpoint",
        "BR101.PH_SP",
        "7.0",
        "7.2",
        "pH",
        "raise pH for growth phase",
        "done",
    )
    assert done[11] == signature.signature_id
    assert done[14].startswith("read back")
    signed = plant.runtime.services.store.query(
        "SELECT signer_id, meaning, terminal_id FROM esignatures WHERE signature_id = ?",
        [signature.signature_id],
    )
    assert signed == [("op1", "performed", "T-CONSOLE-1")]

    runtime = plant.runtime

    def history() -> list[tuple]:
        runtime.history.flush()
        return runtime.services.store.query(
            "SELECT actor_id, unattributed FROM tag_history WHERE tag = 'BR101.PH_SP' "
            "AND abs(value - 7.2) < 0.001"
        )

    await until(history, what="the written value in history")
    assert history()[0] == ("op1", False)
    assert not plant.audit("action = 'unattributed_change'")

    start = Command("operate_equipment", "BR101.AGITATOR_RUN", True, "start agitation")
    await plant.commands.execute(op, CONSOLE, start, Credentials(PASSWORD))
    assert plant.plc.get("AGITATOR_RUN") is True


async def test_a_double_signed_setpoint_with_a_witness(plant: Plant):
    op = await plant.login("op1")
    sign = Credentials(PASSWORD, "op1")
    with pytest.raises(PermissionDenied):
        await plant.commands.execute(op, CONSOLE, temp(37.5), sign, Credentials(PASSWORD, "qa1"))
    result = await plant.commands.execute(
        op, CONSOLE, temp(37.5), sign, Credentials(PASSWORD, "sup1")
    )
    assert result.outcome == "done"
    assert [s.signer_id for s in result.signatures] == ["op1", "sup1"]
    assert [s.meaning for s in result.signatures] == ["performed", "verified"]
    assert plant.plc.get("TEMP_SP") == pytest.approx(37.5)
    done = plant.audit("target = 'BR101.TEMP_SP' AND outcome = 'done'")[0]
    assert done[11] == ",".join(s.signature_id for s in result.signatures)


async def test_a_double_signed_setpoint_through_the_approval_queue(plant: Plant):
    op = await plant.login("op1")
    result = await plant.commands.execute(op, CONSOLE, temp(37.5), Credentials(PASSWORD, "op1"))
    assert result.outcome == "pending" and result.approval_id
    assert plant.plc.get("TEMP_SP") == pytest.approx(37.0)
    (item,) = plant.approvals.list_pending()
    assert "Olga Operator (op1)" in item.describe() and "37.0 °C → 37.5 °C" in item.describe()

    with pytest.raises(PermissionDenied):
        await plant.approvals.approve(op, CONSOLE, item.approval_id, "op1", PASSWORD, "ok")
    sup_op = await plant.runtime.services.identity.login("sup1", PASSWORD, CONSOLE)
    # A supervisor who asked may not approve their own request.
    own = await plant.commands.execute(
        sup_op, CONSOLE, temp(37.5, "own request"), Credentials(PASSWORD, "sup1")
    )
    with pytest.raises(HmiError, match="another supervisor"):
        await plant.approvals.approve(sup_op, CONSOLE, own.approval_id, "sup1", PASSWORD, "ok")

    sup2 = await plant.login("sup2")
    done = await plant.approvals.approve(
        sup2, CONSOLE, item.approval_id, "sup2", PASSWORD, "checked the batch record"
    )
    assert done.outcome == "done"
    assert plant.plc.get("TEMP_SP") == pytest.approx(37.5)
    rows = plant.audit("target = 'BR101.TEMP_SP' AND outcome = 'done'")
    assert [r[4] for r in rows] == ["approval_approved", "write_setpoint"]
    assert rows[1][0] == "op1" and len(rows[1][11].split(",")) == 2
    assert plant.audit("action = 'approval_refused'")
    events = plant.runtime.services.store.query(
        "SELECT event, actor_id FROM approvals WHERE approval_id = ? ORDER BY seq",
        [item.approval_id],
    )
    assert events == [("requested", "op1"), ("refused", "op1"), ("approved", "sup2")]


async def test_expired_and_changed_requests_are_refused(plant: Plant):
    clock = FakeClock()
    queue = ApprovalQueue(plant.commands, clock, 1800)
    op = await plant.login("op1")
    sup = await plant.login("sup1")
    first = await plant.commands.execute(op, CONSOLE, temp(37.5), Credentials(PASSWORD, "op1"))
    clock.advance(timedelta(minutes=31))
    assert [p.approval_id for p in await queue.expire()] == [first.approval_id]
    with pytest.raises(HmiError, match="no pending request"):
        await queue.approve(sup, CONSOLE, first.approval_id, "sup1", PASSWORD, "late")
    assert plant.audit("action = 'approval_expired' AND outcome = 'expired'")
    notes = await plant.runtime.services.recorder.notifications("supervisor")
    assert notes and notes[0][2] == "approval_expired"

    second = await plant.commands.execute(op, CONSOLE, temp(37.5), Credentials(PASSWORD))
    plant.plc.set("TEMP_SP", 38.0)
    await until(lambda: plant.value("BR101.TEMP_SP") == pytest.approx(38.0), what="38 °C")
    with pytest.raises(HmiError, match="is now 38"):
        await queue.approve(sup, CONSOLE, second.approval_id, "sup1", PASSWORD, "fine")
    assert plant.plc.get("TEMP_SP") == pytest.approx(38.0)
    assert not queue.list_pending()

    third = await plant.commands.execute(op, CONSOLE, temp(38.5), Credentials(PASSWORD))
    assert [p.approval_id for p in await queue.withdraw_all("test")] == [third.approval_id]
    withdrawn = plant.runtime.services.store.query(
        "SELECT approval_id, actor_id, outcome FROM approvals WHERE event = 'withdrawn'"
    )
    assert withdrawn == [(third.approval_id, "system", "withdrawn")]
    # The requester is told of each end: expired, refused (value moved), withdrawn.
    told = await plant.runtime.services.recorder.notifications("user:op1")
    assert [(kind, subject) for _, _, kind, _, subject, _ in reversed(told)] == [
        ("approval_expired", first.approval_id),
        ("approval_refused", second.approval_id),
        ("approval_withdrawn", third.approval_id),
    ]
    assert "is now 38" in told[1][3]


async def test_the_terminal_api_reads_requests_and_approves(plant: Plant):
    api = plant.runtime.api
    assert api is not None
    op = await api.login("op1", PASSWORD, CONSOLE)
    api.touch(op)
    (reading,) = api.read_tags(op, ["BR101.TEMP_SP"])
    assert reading.value == pytest.approx(37.0) and reading.units == "°C"
    assert reading.quality == "GOOD"
    choices = {c.action: c.allowed for c in api.what_may_i_do(op)}
    assert choices == {
        "write_setpoint": True,
        "operate_equipment": True,
        "capture_image": True,
        "approve_command": False,
    }

    asked = await api.request_write(
        op, CONSOLE, SetpointRequest("BR101.TEMP_SP", 37.5, "warm up", Credentials(PASSWORD, "op1"))
    )
    assert asked.outcome == "pending" and "Olga Operator (op1)" in asked.signatures[0]
    sup = await api.login("sup1", PASSWORD, CONSOLE)
    (pending,) = api.pending_approvals(sup)
    assert (pending.requester_id, pending.old_value, pending.new_value, pending.units) == (
        "op1",
        pytest.approx(37.0),
        pytest.approx(37.5),
        "°C",
    )
    assert pending.expires_at - pending.requested_at == timedelta(minutes=30)
    done = await api.decide(
        sup, CONSOLE, Decision(pending.approval_id, True, "sup1", PASSWORD, "agreed")
    )
    assert done is not None and done.outcome == "done"
    assert plant.plc.get("TEMP_SP") == pytest.approx(37.5)
    await api.logout(op)
    await api.logout(sup)
    again = await api.request_write(
        op2 := await api.login("op1", PASSWORD, CONSOLE),
        CONSOLE,
        SetpointRequest("BR101.TEMP_SP", 38.0, "warmer", Credentials(PASSWORD, "op1")),
    )
    assert (
        await api.decide(
            sup2 := await api.login("sup2", PASSWORD, CONSOLE),
            CONSOLE,
            Decision(again.approval_id or "", False, "sup2", PASSWORD, "not during this phase"),
        )
        is None
    )
    assert not api.pending_approvals(sup2)
    assert plant.plc.get("TEMP_SP") == pytest.approx(37.5)
    rejected = plant.runtime.services.store.query(
        "SELECT actor_id, outcome, reason FROM approvals WHERE event = 'rejected'"
    )
    assert rejected == [("sup2", "done", "not during this phase")]
    await api.logout(op2)
