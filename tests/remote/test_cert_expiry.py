"""Certificates that end soon are said ahead: by `hmi certs list` and by a system alarm."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from hmi.cli import main
from hmi.remote.cert_expiry import expiring
from hmi.remote.certs import CertificateAuthority


def test_the_runtime_hosts_files_that_end_within_a_month(tmp_path: Path) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca", "Test plant")
    server = ca.issue_server(hosts=["127.0.0.1"], days=10)
    now = dt.datetime.now(dt.UTC)
    (soon,) = expiring(ca.directory, now)
    assert soon.file == "server.crt" and soon.ends == server.not_after
    assert soon.describe(now) == f"server.crt expires on {server.not_after.date()} (in 10 days)"
    later = now + dt.timedelta(days=20)
    assert expiring(ca.directory, later)[0].describe(later).startswith("server.crt expired on")
    far = now + dt.timedelta(days=3640)
    assert [e.file for e in expiring(ca.directory, far)] == ["server.crt", "ca.crt", "crl.pem"]


def test_certs_list_flags_terminal_certificates_that_end_soon(tmp_path: Path) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca", "Test plant")
    ca.issue_terminal("PANEL-1", days=10)
    ca.issue_terminal("PANEL-2")
    ca.issue_server(hosts=["127.0.0.1"], days=5)
    result = CliRunner().invoke(main, ["certs", "list", "--dir", str(ca.directory)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "ENDS IN 10 DAYS" in lines["PANEL-1"]
    assert lines["PANEL-2"].endswith("valid")
    assert "Warning: server.crt expires on" in result.output
