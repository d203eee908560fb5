"""Terminal certificates and mutual TLS on loopback: identity, unknown CA, revocation (11.10(h))."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from hmi.remote.certs import CA_KEY, CertificateAuthority, CertificateError
from hmi.remote.tls import Peer, PeerCheck, client_context, server_context

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    ca = CertificateAuthority.init(tmp_path / "certs", "Test plant")
    ca.issue_server(hosts=["127.0.0.1", "localhost"])
    return ca


async def handshake(ca_dir: Path, cert: Path, key: Path, ca_cert: Path) -> Peer | str:
    """Connect one client to a real TLS server on 127.0.0.1; what the server made of it."""
    check = PeerCheck(ca_dir)
    seen: asyncio.Future[Peer | str] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            seen.set_result(check.identify(der))
            writer.write(b"welcome\n")
            await writer.drain()
        except CertificateError as exc:
            seen.set_result(exc.message)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context(ca_dir))
    port = server.sockets[0].getsockname()[1]
    try:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, ssl=client_context(cert, key, ca_cert)),
                10,
            )
            # TLS 1.3: a refused client certificate shows at the client's first read.
            line = await asyncio.wait_for(reader.readline(), 10)
            writer.close()
        except (ssl.SSLError, ConnectionError) as exc:
            return f"handshake failed: {exc}"
        if not seen.done():
            return f"handshake failed: connection closed ({line!r})"
        return seen.result()
    finally:
        server.close()
        await server.wait_closed()


async def test_the_certificate_names_the_terminal(ca: CertificateAuthority) -> None:
    issued = ca.issue_terminal("PANEL-1")
    assert issued.key.stat().st_mode & 0o777 == 0o600
    assert (ca.directory / CA_KEY).stat().st_mode & 0o777 == 0o600
    peer = await handshake(ca.directory, issued.cert, issued.key, ca.ca_cert_path)
    assert peer == Peer("PANEL-1", issued.serial)


async def test_a_revoked_terminal_is_refused_at_the_next_connection(
    ca: CertificateAuthority,
) -> None:
    issued = ca.issue_terminal("PANEL-2")
    other = ca.issue_terminal("PANEL-3")
    assert ca.revoke("PANEL-2") == [issued.serial]
    refused = await handshake(ca.directory, issued.cert, issued.key, ca.ca_cert_path)
    assert isinstance(refused, str) and "PANEL-2" in refused and "revoked" in refused
    assert await handshake(ca.directory, other.cert, other.key, ca.ca_cert_path) == Peer(
        "PANEL-3", other.serial
    )
    crl = x509.load_pem_x509_crl(ca.crl_path.read_bytes())
    assert [r.serial_number for r in crl] == [issued.serial]
    assert ca.index()[str(issued.serial)]["revoked_at"] is not None
    with pytest.raises(CertificateError, match="all are revoked already"):
        ca.revoke("PANEL-2")


async def test_a_certificate_from_another_ca_fails_the_handshake(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    stranger = CertificateAuthority.init(tmp_path / "other", "Other plant")
    forged = stranger.issue_terminal("PANEL-1")
    result = await handshake(ca.directory, forged.cert, forged.key, ca.ca_cert_path)
    assert isinstance(result, str) and result.startswith("handshake failed")


def test_issuing_refuses_bad_ids_and_never_overwrites(ca: CertificateAuthority) -> None:
    with pytest.raises(CertificateError, match="not a terminal ID"):
        ca.issue_terminal("../etc/passwd")
    with pytest.raises(CertificateError, match="not a terminal ID"):
        ca.issue_terminal("server")
    first = ca.issue_terminal("QA-DESK")
    before = first.cert.read_bytes()
    with pytest.raises(CertificateError, match="already exists"):
        ca.issue_terminal("QA-DESK")
    assert first.cert.read_bytes() == before
    with pytest.raises(CertificateError, match="already holds a CA"):
        CertificateAuthority.init(ca.directory, "Again")
    with pytest.raises(CertificateError, match="no certificate to revoke"):
        ca.revoke("NOBODY")


def test_the_certs_command(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hmi.cli import main

    d = str(tmp_path / "ca")

    def hmi(*args: str) -> str:
        r = CliRunner().invoke(main, ["certs", *args, "--dir", d])
        assert r.exit_code == 0, r.output
        return r.output

    assert "Created the CA" in hmi("init-ca", "--plant", "Test plant")
    hmi("issue-server", "--host", "127.0.0.1")
    assert "PANEL-1.crt" in hmi("issue-terminal", "PANEL-1")
    assert "Revoked PANEL-1" in hmi("revoke", "PANEL-1")
    listing = hmi("list")
    assert "PANEL-1" in listing and "revoked" in listing and "server" in listing
    again = CliRunner().invoke(main, ["certs", "revoke", "PANEL-1", "--dir", d])
    assert again.exit_code != 0 and "all are revoked already" in again.output
