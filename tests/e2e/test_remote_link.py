"""The Terminal API over a real Unix socket and over mutual TLS on 127.0.0.1.

The server decides who the terminal is; the client cannot send a session or an
origin; refusals arrive as the core's own errors; a dropped link ends its
session on the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from pathlib import Path

import pytest
from custos_plant import CONSOLE, ApiPlant
from custos_testkit import ADMIN_ID, ADMIN_PASSWORD, PLANT_PASSWORD, until
from test_change_control_live import NEW_TAG, approve
from test_change_control_runtime import engineer

from hmi.core.api_types import Decision, SetpointRequest, TagReading
from hmi.core.commands import Credentials
from hmi.core.errors import AuthenticationError, HmiError, SessionEnded
from hmi.core.reports import ReportOutcome, ReportRequest
from hmi.remote import protocol as rpc
from hmi.remote.certs import CertificateAuthority
from hmi.remote.client import LinkLost, RpcClient
from hmi.remote.server import DISCONNECTED, TerminalServer
from hmi.remote.terminal_api import RemoteTerminalAPI
from hmi.remote.tls import PeerCheck, client_context, server_context

pytestmark = pytest.mark.timeout(120)


def security_events(plant: ApiPlant, event: str) -> list[tuple[object, ...]]:
    return plant.query(
        "SELECT user_id, terminal_id, source, detail FROM security_event_records "
        "WHERE event = ? ORDER BY seq",
        [event],
    )


async def test_a_local_terminal_logs_in_reads_and_writes_over_the_socket(
    api_plant: ApiPlant, served: tuple[TerminalServer, Path]
) -> None:
    _, path = served
    client = await RpcClient.unix(path)
    try:
        hello = await client.hello("T-CONSOLE-1")
        assert hello["terminal"] == "T-CONSOLE-1" and hello["source"].startswith("local:")
        session = await client.call("login", user_id="op1", password=PLANT_PASSWORD)
        assert session.user.user_id == "op1" and session.origin.terminal_id == "T-CONSOLE-1"
        readings = await client.call("read_tags", names=["BR101.TEMP_PV"])
        assert isinstance(readings[0], TagReading) and readings[0].tag == "BR101.TEMP_PV"
        assert "write_setpoint" in await client.call("permissions")

        request = SetpointRequest(
            "BR101.AGIT_SP", 150.0, "remote test", Credentials(PLANT_PASSWORD, "op1")
        )
        outcome = await client.call("request_write", request=request)
        assert outcome.outcome == "done"
        await until(lambda: api_plant.value("BR101.AGIT_SP") == 150.0, what="the PLC took it")
        rows = api_plant.query(
            "SELECT actor_id, terminal_id, source FROM audit_records "
            "WHERE action = 'write_setpoint' AND outcome = 'done'"
        )
        assert rows == [("op1", "T-CONSOLE-1", hello["source"])]
    finally:
        await client.close()


async def test_refusals_arrive_as_the_cores_errors(
    served: tuple[TerminalServer, Path], caplog: pytest.LogCaptureFixture
) -> None:
    _, path = served
    caplog.set_level(logging.DEBUG)
    client = await RpcClient.unix(path)
    try:
        with pytest.raises(HmiError, match="hello"):
            await client.call("read_tags", names=[])
        await client.hello("T-CONSOLE-1")
        with pytest.raises(SessionEnded):
            await client.call("read_tags", names=[])
        with pytest.raises(AuthenticationError) as refused:
            await client.call("login", user_id="op1", password="wrong password 1")
        assert refused.value.title == AuthenticationError.title
        for forbidden in ("identity.login", "commands.write", "_preview", "table.get"):
            with pytest.raises(HmiError, match="no method"):
                await client.request(forbidden, {})
        await client.call("login", user_id="op1", password=PLANT_PASSWORD)
        with pytest.raises(HmiError, match="takes no session"):
            await client.request("read_tags", {"names": [], "session": {"session_id": "x"}})
        with pytest.raises(HmiError, match=r"read_tags\.names"):
            await client.request("read_tags", {"names": "BR101.TEMP_PV"})
        with pytest.raises(HmiError, match="password"):
            await client.request("login", {"user_id": "op1", "password": ["wrong password 2"]})
        client.writer.write(
            b'{"jsonrpc": "2.0", "method": "login", "params": {"password": "wrong password 3\n'
        )
        await client.writer.drain()
        assert "write_setpoint" in await client.call("permissions")  # the link goes on
    finally:
        await client.close()
    # Passwords travel in the messages only: never in the runtime's log.
    for secret in (PLANT_PASSWORD, "wrong password 1", "wrong password 2", "wrong password 3"):
        assert secret not in caplog.text


async def test_a_dropped_link_ends_its_session_on_the_record(
    api_plant: ApiPlant, served: tuple[TerminalServer, Path]
) -> None:
    server, path = served
    client = await RpcClient.unix(path)
    await client.hello("T-CONSOLE-1")
    session = await client.call("login", user_id="op1", password=PLANT_PASSWORD)
    await client.close()
    await until(lambda: not server.connections, what="the server saw the link go")
    ended = api_plant.query(
        "SELECT user_id, terminal_id FROM security_event_records WHERE session_id = ? "
        "AND event = ?",
        [session.session_id, DISCONNECTED],
    )
    assert ended == [("op1", "T-CONSOLE-1")]
    assert session.session_id not in api_plant.api.identity.sessions


async def test_tls_terminal_is_the_certificate_and_revocation_is_recorded(
    api_plant: ApiPlant, tmp_path: Path
) -> None:
    assert api_plant.runtime.services is not None
    ca = CertificateAuthority.init(tmp_path / "certs", "Test plant")
    ca.issue_server(hosts=["127.0.0.1"])
    imaging = ca.issue_terminal("T-IMAGING-1")
    server = TerminalServer(
        api_plant.api,
        api_plant.runtime.services.config.terminals,
        peer_check=PeerCheck(ca.directory),
        tls=server_context(ca.directory),
    )
    # Plain TCP, as hmi serve listens: the server does the handshake and records a failed one.
    listener = await asyncio.start_server(server.serve_tls, "127.0.0.1", 0, limit=rpc.MAX_MESSAGE)
    port = listener.sockets[0].getsockname()[1]
    context = client_context(imaging.cert, imaging.key, ca.ca_cert_path)
    try:
        client = await RpcClient.tls("127.0.0.1", port, context)
        with pytest.raises(HmiError, match="names T-IMAGING-1, not T-CONSOLE-1"):
            await client.hello("T-CONSOLE-1")
        hello = await client.hello(None)
        assert (hello["terminal"], hello["source"]) == ("T-IMAGING-1", "tls:127.0.0.1")
        session = await client.call("login", user_id="op1", password=PLANT_PASSWORD)
        assert session.origin.terminal_id == "T-IMAGING-1"
        await client.close()

        ca.revoke("T-IMAGING-1")
        refused = await RpcClient.tls("127.0.0.1", port, context)
        await asyncio.wait_for(refused.closed.wait(), 10)
        with pytest.raises(LinkLost, match="revoked"):
            await refused.hello(None)
        await refused.close()
        rows = security_events(api_plant, "terminal_refused")
        assert len(rows) == 2 and rows[1][2] == "tls:127.0.0.1" and "revoked" in str(rows[1][3])
        assert "names T-IMAGING-1, not T-CONSOLE-1" in str(rows[0][3])

        # Unknown certificates are refused and recorded too: another CA's, none, an
        # unknown terminal's; the same refusal again within a minute is counted, not recorded.
        other = CertificateAuthority.init(tmp_path / "other", "Another plant")
        stranger = other.issue_terminal("T-CONSOLE-1")
        foreign = client_context(stranger.cert, stranger.key, ca.ca_cert_path)
        nameless = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        nameless.load_verify_locations(cafile=str(ca.ca_cert_path))
        unknown = ca.issue_terminal("T-NOWHERE")
        for attempt in (foreign, foreign, nameless):
            with contextlib.suppress(ssl.SSLError, ConnectionError, OSError, LinkLost):
                client = await RpcClient.tls("127.0.0.1", port, attempt)
                await asyncio.wait_for(client.closed.wait(), 10)
                await client.close()
        client = await RpcClient.tls(
            "127.0.0.1", port, client_context(unknown.cert, unknown.key, ca.ca_cert_path)
        )
        with pytest.raises(HmiError, match="T-NOWHERE is not a terminal of this plant"):
            await client.hello(None)
        await client.close()
        await until(
            lambda: len(security_events(api_plant, "terminal_refused")) == 5,
            what="the refusals recorded",
        )
        details = [str(r[3]) for r in security_events(api_plant, "terminal_refused")[2:]]
        assert "failed verification" in details[0]
        assert "presented no certificate" in details[1]
        assert "T-NOWHERE is not a terminal of this plant" in details[2]
        assert server.refusals.to_record("127.0.0.1", details[0]) is None  # still within the minute
    finally:
        listener.close()
        await listener.wait_closed()


async def remote_terminal(path: Path, terminal: str) -> RemoteTerminalAPI:
    client = await RpcClient.unix(path)
    return RemoteTerminalAPI(client, await client.hello(terminal))


async def test_a_remote_approval_reaches_the_supervisor_within_a_second(
    api_plant: ApiPlant, served: tuple[TerminalServer, Path]
) -> None:
    _, path = served
    console = await remote_terminal(path, "T-CONSOLE-1")
    desk = await remote_terminal(path, "T-SUPERVISOR-1")
    told: list[str] = []
    console.on_notice = lambda n: told.append(f"{n.kind}: {n.message}")
    try:
        op = await console.login("op1", PLANT_PASSWORD, CONSOLE)
        sup = await desk.login("sup1", PLANT_PASSWORD, CONSOLE)
        assert desk.pending_approvals(sup) == []
        (before,) = console.read_tags(op, ["BR101.TEMP_SP"])

        asked = await console.request_write(
            op,
            CONSOLE,
            SetpointRequest("BR101.TEMP_SP", 37.5, "warm up", Credentials(PLANT_PASSWORD, "op1")),
        )
        assert asked.outcome == "pending"
        requested = time.monotonic()
        await until(lambda: desk.pending_approvals(sup), timeout=5, what="pushed to the desk")
        assert time.monotonic() - requested < 1.0
        (pending,) = desk.pending_approvals(sup)
        assert (pending.requester_id, pending.new_value) == ("op1", 37.5)

        done = await desk.decide(
            sup, CONSOLE, Decision(pending.approval_id, True, "sup1", PLANT_PASSWORD, "agreed")
        )
        assert done is not None and done.outcome == "done"
        await until(
            lambda: console.read_tags(op, ["BR101.TEMP_SP"])[0].value == 37.5,
            timeout=5,
            what="the console sees the new setpoint",
        )
        assert before.value != 37.5
        assert console.pending_approvals(op) == []
        await until(lambda: told, timeout=5, what="the requester is told at terminal A")
        assert told == [
            f"approval_approved: Approved by Sam Supervisor (sup1): BR101.TEMP_SP: "
            f"{before.value} °C → 37.5 °C; written."
        ]

        # A rejection reaches the requester the same way.
        again = await console.request_write(
            op,
            CONSOLE,
            SetpointRequest("BR101.TEMP_SP", 38.0, "warmer", Credentials(PLANT_PASSWORD, "op1")),
        )
        await until(lambda: desk.pending_approvals(sup), timeout=5, what="the second request")
        await desk.decide(
            sup, CONSOLE, Decision(again.approval_id, False, "sup1", PLANT_PASSWORD, "too warm")
        )
        await until(lambda: len(told) == 2, timeout=5, what="the rejection at terminal A")
        assert told[1].startswith("approval_rejected: Rejected by Sam Supervisor (sup1)")
        assert "'too warm'" in told[1]
        rows = api_plant.query(
            "SELECT DISTINCT actor_id, terminal_id FROM audit_records "
            "WHERE terminal_id = 'T-SUPERVISOR-1'"
        )
        assert rows == [("sup1", "T-SUPERVISOR-1")]
    finally:
        await console.client.close()
        await desk.client.close()


async def test_a_stuck_terminal_does_not_slow_the_others(
    api_plant: ApiPlant, served: tuple[TerminalServer, Path]
) -> None:
    server, path = served
    stuck_reader, stuck_writer = await asyncio.open_unix_connection(path, limit=rpc.MAX_MESSAGE)
    for request_id, (method, params) in enumerate(
        [
            ("hello", {"terminal": "T-CONSOLE-1"}),
            ("login", {"user_id": "op2", "password": PLANT_PASSWORD}),
        ],
        start=1,
    ):
        stuck_writer.write(rpc.encode_message(rpc.request(request_id, method, params)))
    await stuck_writer.drain()
    live = await remote_terminal(path, "T-CONSOLE-1")
    try:
        op = await live.login("op1", PLANT_PASSWORD, CONSOLE)
        assert api_plant.runtime.plant is not None
        # The stuck terminal never reads; the live one must keep getting new values.
        for step in range(5):
            value = 100.0 + step
            outcome = await live.request_write(
                op,
                CONSOLE,
                SetpointRequest("BR101.AGIT_SP", value, "test", Credentials(PLANT_PASSWORD, "op1")),
            )
            assert outcome.outcome == "done"
            await until(
                lambda v=value: live.read_tags(op, ["BR101.AGIT_SP"])[0].value == v,
                timeout=5,
                what=f"the live terminal sees {value}",
            )
        assert len(server.connections) == 2
    finally:
        await live.client.close()
        stuck_writer.close()
        del stuck_reader


async def test_qa_makes_a_report_over_the_link(
    api_plant: ApiPlant, served: tuple[TerminalServer, Path]
) -> None:
    _, path = served
    qa = await remote_terminal(path, "T-QA-1")
    try:
        session = await qa.login("qa1", PLANT_PASSWORD, CONSOLE)
        assert qa.reports is not None
        outcome = await qa.reports.report(session, CONSOLE, ReportRequest("audit", "csv"))
        assert isinstance(outcome, ReportOutcome) and outcome.row_count > 0
        assert Path(outcome.path).is_file() and outcome.integrity_ok
        rows = api_plant.query(
            "SELECT actor_id, terminal_id FROM audit_records WHERE action = 'report_exported'"
        )
        assert rows == [("qa1", "T-QA-1")]
    finally:
        await qa.client.close()


async def test_a_lockout_reaches_every_administrators_terminal_within_a_second(
    api_plant: ApiPlant, served: tuple[TerminalServer, Path]
) -> None:
    server, path = served
    admin_desk = await remote_terminal(path, "T-QA-1")
    supervisor_desk = await remote_terminal(path, "T-SUPERVISOR-1")
    console = await remote_terminal(path, "T-CONSOLE-1")
    seen: dict[str, list[tuple[str, float]]] = {"admin": [], "supervisor": []}
    admin_desk.on_notice = lambda n: seen["admin"].append((n.message, time.monotonic()))
    supervisor_desk.on_notice = lambda n: seen["supervisor"].append((n.message, time.monotonic()))
    try:
        await admin_desk.login(ADMIN_ID, ADMIN_PASSWORD, CONSOLE)
        await supervisor_desk.login("sup1", PLANT_PASSWORD, CONSOLE)
        await until(
            lambda: all(c.last_notice is not None for c in server.connections if c.session),
            what="both desks have taken in the notifications from before their login",
        )
        for _ in range(3):
            with pytest.raises(AuthenticationError):
                await console.login("op2", "not the password 1", CONSOLE)
        locked = time.monotonic()
        await until(lambda: seen["admin"], timeout=5, what="the lockout at the admin's desk")
        message, at = seen["admin"][0]
        assert "op2" in message and at - locked < 1.5
        assert seen["supervisor"] == []
    finally:
        for terminal in (admin_desk, supervisor_desk, console):
            await terminal.client.close()


async def test_tag_values_are_read_once_per_table_version_for_every_terminal(
    api_plant: ApiPlant,
) -> None:
    from hmi.remote.codec import encode
    from hmi.remote.state import PushState, SharedReadings

    shared = SharedReadings(api_plant.api)
    first = await api_plant.login("op1")
    second = await api_plant.login("op2")
    a, b = PushState(), PushState()
    # No await between these: the table cannot change, so one read serves both terminals.
    sent_a = a.changed_tags(shared, first)
    sent_b = b.changed_tags(shared, second)
    assert sent_a == sent_b == encode(api_plant.api.read_tags(first))
    assert shared.reads == 1 and a.changed_tags(shared, first) == []
    await api_plant.api.logout(first)
    with pytest.raises(SessionEnded):
        a.changed_tags(shared, first)


async def test_qa_verifies_the_running_plants_records_over_the_link(
    api_plant: ApiPlant, served: tuple[TerminalServer, Path]
) -> None:
    _, path = served
    qa = await remote_terminal(path, "T-QA-1")
    console = await remote_terminal(path, "T-CONSOLE-1")
    try:
        session = await qa.login("qa1", PLANT_PASSWORD, CONSOLE)
        assert qa.records is not None
        answer = await qa.records.verify(session, CONSOLE)
        assert answer.ok and answer.summary.startswith("OK:") and answer.problems == ()
        op = await console.login("op1", PLANT_PASSWORD, CONSOLE)
        assert console.records is not None
        with pytest.raises(HmiError):
            await console.records.verify(op, CONSOLE)
        rows = api_plant.query(
            "SELECT action, outcome, actor_id, terminal_id, detail FROM audit_records "
            "WHERE action IN ('records_verified', 'view_verification') ORDER BY seq"
        )
        assert [r[:4] for r in rows] == [
            ("records_verified", "done", "qa1", "T-QA-1"),
            ("view_verification", "refused", "op1", "T-CONSOLE-1"),
        ]
        assert str(rows[0][4]).startswith("OK:")
    finally:
        await qa.client.close()
        await console.client.close()


async def test_a_remote_terminal_sees_an_approved_configuration_without_logging_in_again(
    api_plant: ApiPlant, served: tuple[TerminalServer, Path]
) -> None:
    _, path = served
    console = await remote_terminal(path, "T-CONSOLE-1")
    try:
        op = await console.login("op1", PLANT_PASSWORD, CONSOLE)
        names = {d.name for d in console.tag_definitions(op)}
        assert "BR101.TEMP_PV_B" not in names
        await engineer(api_plant)
        eng = await api_plant.login("eng1")
        assert api_plant.api.config is not None
        files = {f.name: f.text for f in api_plant.api.config.files(eng)}
        files["tags.toml"] = (
            files["tags.toml"].replace('"Feed pump run command"', '"Feed pump run (P-101)"')
            + NEW_TAG
        )
        services = api_plant.runtime.services
        assert services is not None
        version = await services.change.submit(
            eng, CONSOLE, files, "second probe", PLANT_PASSWORD, "eng1"
        )
        effect = await approve(api_plant, version.version)
        assert effect.startswith("Applied now"), effect

        def described() -> dict[str, str]:
            return {d.name: d.description for d in console.tag_definitions(op)}

        await until(lambda: "BR101.TEMP_PV_B" in described(), timeout=5, what="new definitions")
        assert described()["BR101.FEED_PUMP"] == "Feed pump run (P-101)"
        await until(
            lambda: console.read_tags(op, ["BR101.TEMP_PV_B"])[0].quality == "GOOD",
            timeout=30,
            what="the new tag's values pushed",
        )
    finally:
        await console.client.close()


async def test_an_administrator_ends_a_session_at_another_terminal(
    api_plant: ApiPlant, served: tuple[TerminalServer, Path]
) -> None:
    _, path = served
    admin_desk = await remote_terminal(path, "T-CONSOLE-1")
    console = await remote_terminal(path, "T-SUPERVISOR-1")
    ended: list[str] = []
    console.on_session_ended = ended.append
    try:
        admin = await admin_desk.login(ADMIN_ID, ADMIN_PASSWORD, CONSOLE)
        op = await console.login("op1", PLANT_PASSWORD, CONSOLE)
        assert admin_desk.admin is not None
        listed = await admin_desk.admin.sessions(admin)
        assert {(s.user_id, s.terminal_id) for s in listed} == {
            (ADMIN_ID, "T-CONSOLE-1"),
            ("op1", "T-SUPERVISOR-1"),
        }
        (theirs,) = [s for s in listed if s.user_id == "op1"]
        assert theirs.source.startswith("local:") and theirs.session_id == op.session_id
        mine = next(s for s in listed if s.user_id == ADMIN_ID)

        with pytest.raises(HmiError, match="reason"):
            await admin_desk.admin.end_session(admin, CONSOLE, theirs.session_id, " ")
        with pytest.raises(HmiError, match="log out instead"):
            await admin_desk.admin.end_session(admin, CONSOLE, mine.session_id, "test")
        await admin_desk.admin.end_session(admin, CONSOLE, theirs.session_id, "left unattended")
        await until(lambda: ended, timeout=5, what="the console told its session ended")
        assert ended == ["ended_by_administrator"]
        with pytest.raises(SessionEnded):
            await console.request_write(
                op,
                CONSOLE,
                SetpointRequest("BR101.AGIT_SP", 120.0, "x", Credentials(PLANT_PASSWORD, "op1")),
            )
        with pytest.raises(HmiError, match="ended already"):
            await admin_desk.admin.end_session(admin, CONSOLE, theirs.session_id, "again")

        # Only administrators see or end sessions.
        sup = await console.login("sup1", PLANT_PASSWORD, CONSOLE)
        assert console.admin is not None
        with pytest.raises(HmiError):
            await console.admin.sessions(sup)
    finally:
        await admin_desk.client.close()
        await console.client.close()
    [(actor, terminal, detail)] = api_plant.query(
        "SELECT actor_id, terminal_id, detail FROM security_event_records "
        "WHERE event = 'ended_by_administrator'"
    )
    assert (actor, terminal) == (ADMIN_ID, "T-SUPERVISOR-1")
    assert detail == f"by {ADMIN_ID} at T-CONSOLE-1: left unattended"
    acts = api_plant.query(
        "SELECT outcome, actor_id, terminal_id, reason FROM audit_trail "
        "WHERE action = 'end_session' ORDER BY seq"
    )
    assert acts[-2:] == [
        ("done", ADMIN_ID, "T-CONSOLE-1", "left unattended"),
        ("refused", ADMIN_ID, "T-CONSOLE-1", "again"),
    ]
    assert [a[0] for a in acts[:2]] == ["refused", "refused"]


async def test_an_unknown_terminal_id_is_refused_and_recorded_cut_to_size(
    api_plant: ApiPlant, served: tuple[TerminalServer, Path]
) -> None:
    _, path = served
    client = await RpcClient.unix(path)
    try:
        with pytest.raises(HmiError, match="is not a terminal of this plant"):
            await client.hello("T-" + "X" * 10_000)
    finally:
        await client.close()
    [(_, terminal, source, detail)] = security_events(api_plant, "terminal_refused")
    assert len(str(terminal)) == 64 and str(terminal).endswith("...")
    assert str(source).startswith("local:") and len(str(detail)) < 120
