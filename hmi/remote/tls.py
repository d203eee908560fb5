"""Mutual TLS for remote terminals: contexts, and who the peer is (11.10(h)).

The handshake proves the peer holds a key certified by the plant CA; this
module then says which terminal that is (the certificate's common name) and
refuses a certificate on the revocation list. The list is re-read whenever
``crl.pem`` changes, so ``hmi certs revoke`` takes effect for the next
connection without restarting the server.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from hmi.remote.certs import CA_CERT, CRL, SERVER_NAME, CertificateError


def server_context(certs_dir: Path, *, name: str = SERVER_NAME) -> ssl.SSLContext:
    """TLS 1.3 server context that requires a client certificate from the plant CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(certs_dir / f"{name}.crt", certs_dir / f"{name}.key")
    ctx.load_verify_locations(cafile=str(certs_dir / CA_CERT))
    return ctx


class ServerContexts:
    """The server context, built again when its files change on disk.

    A renewed server certificate (or CA) copied into the certificates directory
    is used from the next connection on: the runtime, and the plant with it,
    keeps running.
    """

    def __init__(self, certs_dir: Path, *, name: str = SERVER_NAME) -> None:
        self.files = [certs_dir / f"{name}.crt", certs_dir / f"{name}.key", certs_dir / CA_CERT]
        self.certs_dir, self.name = certs_dir, name
        self._stamp = self._stamps()
        self._context = server_context(certs_dir, name=name)

    def _stamps(self) -> tuple[tuple[int, int], ...]:
        out = []
        for path in self.files:
            st = path.stat()
            out.append((st.st_mtime_ns, st.st_size))
        return tuple(out)

    def current(self) -> ssl.SSLContext:
        """The context for the next handshake; the last good one if the new files are bad."""
        try:
            stamp = self._stamps()
            if stamp != self._stamp:
                self._context = server_context(self.certs_dir, name=self.name)
                self._stamp = stamp
        except (OSError, ValueError):  # half-copied files: try again at the next connection
            pass
        return self._context


def client_context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """TLS 1.3 client context: the terminal's certificate, and only the plant CA trusted."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cafile=str(ca))
    return ctx


@dataclass(frozen=True)
class Peer:
    terminal_id: str
    serial: int


class PeerCheck:
    """The terminal a verified client certificate names, unless it is revoked."""

    def __init__(self, certs_dir: Path) -> None:
        self.crl_path = certs_dir / CRL
        self._stamp: tuple[int, int] | None = None
        self._revoked: frozenset[int] = frozenset()

    def revoked(self) -> frozenset[int]:
        try:
            st = self.crl_path.stat()
        except FileNotFoundError:
            raise CertificateError(
                f"{self.crl_path} is missing; no terminal can be admitted without it."
            ) from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            crl = x509.load_pem_x509_crl(self.crl_path.read_bytes())
            self._revoked = frozenset(r.serial_number for r in crl)
            self._stamp = stamp
        return self._revoked

    def identify(self, der: bytes | None) -> Peer:
        """The peer of a finished handshake; raises naming why it is refused."""
        if not der:
            raise CertificateError("The terminal presented no certificate.")
        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names:
            raise CertificateError("The terminal's certificate names no terminal.")
        terminal_id = str(names[0].value)
        if cert.serial_number in self.revoked():
            raise CertificateError(
                f"The certificate of terminal {terminal_id} (serial {cert.serial_number:x}) "
                "is revoked."
            )
        return Peer(terminal_id, cert.serial_number)
