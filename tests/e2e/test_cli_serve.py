"""`hmi serve` as its own process, with terminals connecting over its Unix socket and TLS."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from custos_testkit import PLANT_PASSWORD, HmiProcess, demo_config, init_plant_data, until

from drivers.sim.microscope import MicroscopeServer
from drivers.sim.plc import BioreactorPLC
from hmi.cli import main
from hmi.core.records import Origin
from hmi.remote.certs import CertificateAuthority
from hmi.remote_terminal import connect
from hmi.store.db import Store
from hmi.store.verify import verify_data_dir

pytestmark = pytest.mark.timeout(120)
CONSOLE = Origin("T-CONSOLE-1", "local:test")


def hmi(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), input=PLANT_PASSWORD + "\n")


async def test_serve_takes_terminals_and_stops_cleanly(tmp_path: Path) -> None:
    async with (
        BioreactorPLC(host="127.0.0.1", port=0) as plc,
        MicroscopeServer(host="127.0.0.1", port=0, tick=None) as mic,
    ):
        config = demo_config(tmp_path / "config", plc.port, mic.url)
        data = tmp_path / "data"
        await init_plant_data(data, config, CONSOLE)
        ca = CertificateAuthority.init(tmp_path / "certs", "Test plant")
        ca.issue_server(hosts=["127.0.0.1"])
        qa_cert = ca.issue_terminal("T-QA-1")
        sock = tmp_path / "custos.sock"
        args = ["serve", "--data", str(data), "--config", str(config), "--listen", f"unix:{sock}"]
        args += ["--listen", "tls://127.0.0.1:0", "--certs", str(ca.directory)]
        server = HmiProcess(*args)
        try:
            banner = await server.started("Serving terminals")
            assert banner.startswith("Serving terminals on unix:"), banner
            tls_port = int(banner.rsplit(":", 1)[1].rstrip(".\n"))
            assert sock.stat().st_mode & 0o777 == 0o660

            console = await connect(f"unix:{sock}", terminal="T-CONSOLE-1")
            op = await console.login("op1", PLANT_PASSWORD, CONSOLE)
            await until(
                lambda: console.read_tags(op, ["BR101.TEMP_SP"])[0].quality == "GOOD",
                timeout=30,
                what="live values pushed to the terminal",
            )
            await until(
                lambda: console.links == {"PLC1": "UP", "MIC1": "UP"},
                timeout=10,
                what=f"the terminal shows both device links up ({console.links})",
            )
            qa = await connect(
                f"tls://127.0.0.1:{tls_port}",
                cert=qa_cert.cert,
                key=qa_cert.key,
                ca=ca.ca_cert_path,
            )
            assert qa.origin.terminal_id == "T-QA-1"
            await qa.login("qa1", PLANT_PASSWORD, CONSOLE)
            await console.client.close()
            await qa.client.close()

            # QA asks the running plant, over the same TLS link a terminal uses.
            tls = ["--cert", str(qa_cert.cert), "--key", str(qa_cert.key)]
            tls += ["--ca", str(ca.ca_cert_path), "--user", "qa1", "--password-stdin"]
            link = ["--connect", f"tls://127.0.0.1:{tls_port}", *tls]
            sql = "SELECT user_id, event FROM security_events WHERE event = 'login' ORDER BY seq"
            queried = await asyncio.to_thread(hmi, "query", *link, "--format", "csv", sql)
            assert queried.exit_code == 0, queried.output
            assert "op1,login" in queried.output and "qa1,login" in queried.output
            out = tmp_path / "audit.csv"
            reported = await asyncio.to_thread(
                hmi, "report", "audit", *link, "--format", "csv", "--out", str(out)
            )
            assert reported.exit_code == 0, reported.output
            assert out.is_file() and Path(f"{out}.manifest.json").is_file()
            verified = await asyncio.to_thread(hmi, "verify", *link)
            assert verified.exit_code == 0, verified.output
            assert verified.output.startswith("OK:")

            # On the runtime's host, --online finds the socket from the data directory.
            assert (data / "serving.json").is_file()
            here = ["--online", "--data", str(data), "--terminal", "T-CONSOLE-1"]
            local = await asyncio.to_thread(
                hmi, "verify", *here, "--user", "qa1", "--password-stdin"
            )
            assert local.exit_code == 0, local.output
            assert local.output.startswith("OK:")
            both = await asyncio.to_thread(hmi, "verify", *here, *link)
            assert both.exit_code != 0 and "not both" in both.output
        finally:
            status = await server.stop()
        assert status == 0, server.log
        assert not sock.exists()
        assert not (data / "serving.json").exists()
        gone = hmi("verify", "--online", "--data", str(data), "--user", "qa1", "--password-stdin")
        assert gone.exit_code != 0 and "No runtime is serving" in gone.output
    assert verify_data_dir(data).ok
    with Store.open(data) as store:
        events = store.query(
            "SELECT event, user_id, terminal_id FROM security_event_records "
            "WHERE event IN ('login', 'terminal_disconnected', 'runtime_stopped') ORDER BY seq"
        )
    logins = [(e, u, t) for e, u, t in events if e == "login"]
    assert ("login", "op1", "T-CONSOLE-1") in logins and ("login", "qa1", "T-QA-1") in logins
    assert ("terminal_disconnected", "op1", "T-CONSOLE-1") in events
    assert events[-1][0] == "runtime_stopped"
    with Store.open(data) as store:
        online = store.query(
            "SELECT action, actor_id, terminal_id FROM audit_records "
            "WHERE action = 'report_exported' ORDER BY seq"
        )
        queries = store.query("SELECT actor_id, terminal_id, outcome FROM qa_query_records")
    assert ("report_exported", "qa1", "T-QA-1") in online
    assert ("qa1", "T-QA-1", "ok") in queries
