"""A served runtime raises a system alarm a month before its TLS files end, and clears it
once they are renewed (so terminals are not all refused one morning without warning)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from custos_plant import ApiPlant
from custos_testkit import until

from hmi.remote.certs import CertificateAuthority
from hmi.remote.client import RpcClient
from hmi.remote.tls import client_context
from hmi.serve import CERTIFICATES_ALARM, Listen, check_certificates, serving

pytestmark = pytest.mark.timeout(120)
ALARM = f"SYSTEM.{CERTIFICATES_ALARM}"


async def test_ending_certificates_raise_a_system_alarm_until_renewed(
    api_plant: ApiPlant, tmp_path: Path
) -> None:
    runtime = api_plant.runtime
    assert runtime.alarms is not None
    ca = CertificateAuthority.init(tmp_path / "certs", "Test plant")
    server = ca.issue_server(hosts=["127.0.0.1"], days=10)
    console = ca.issue_terminal("T-CONSOLE-1")
    context = client_context(console.cert, console.key, ca.ca_cert_path)

    async def served_until(port: int) -> str:
        client = await RpcClient.tls("127.0.0.1", port, context)
        try:
            assert (await client.hello(None))["terminal"] == "T-CONSOLE-1"
            return str(client.writer.get_extra_info("ssl_object").getpeercert()["notAfter"])
        finally:
            await client.close()

    async with serving(runtime, [Listen.parse("tls://127.0.0.1:0")], ca.directory) as (_, bound):
        await until(lambda: ALARM in runtime.alarms.alarms, what="the alarm at start")
        alarm = runtime.alarms.get(ALARM)
        assert alarm.active and alarm.priority == 3
        assert f"server.crt expires on {server.not_after.date()} (in 10 days)" in alarm.message

        later = runtime.clock.now() + dt.timedelta(days=11)
        check_certificates(runtime, ca.directory, later)
        assert alarm.priority == 2 and "server.crt expired on" in alarm.message

        assert str(server.not_after.year) in await served_until(bound[0].port)

        # Renewed in place: the next connection gets the new certificate, no restart.
        server.cert.unlink()
        server.key.unlink()
        renewed = ca.issue_server(hosts=["127.0.0.1"])
        assert str(renewed.not_after.year) in await served_until(bound[0].port)
        assert check_certificates(runtime, ca.directory, runtime.clock.now()) == []
        assert not alarm.active

    def journal() -> list[str]:
        rows = api_plant.query(
            "SELECT event FROM alarm_journal WHERE alarm_id = ? ORDER BY seq", [ALARM]
        )
        return [str(event) for (event,) in rows]

    await until(lambda: len(journal()) >= 2, what="raised and cleared on the record")
    assert journal()[0] == "activate" and journal()[-1] == "clear"
