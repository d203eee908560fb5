"""The plant's terminal certificates: a small CA, one client certificate per terminal, revocation.

A remote terminal proves which terminal it is with its own client certificate
(11.10(h)): the certificate's common name is the terminal ID, checked against
the ``[[terminal]]`` list of plant.toml. The CA lives in one directory:

- ``ca.crt`` / ``ca.key``: the plant CA (ECDSA P-256; the key 0600);
- ``server.crt`` / ``server.key``: the runtime's TLS server certificate;
- ``ID.crt`` / ``ID.key``: a terminal's certificate, copied to that terminal;
- ``crl.pem``: the revocation list, signed by the CA and re-read by the server
  whenever it changes;
- ``index.json``: every certificate issued, by serial, with its terminal and
  whether and when it was revoked.

Revoking a terminal revokes every certificate ever issued to that ID. A
terminal key is written once and handed over; the CA never needs it again.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hmi.core.errors import HmiError

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_NAME = "server"
CRL = "crl.pem"
INDEX = "index.json"
TERMINAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}")
RESERVED = {"ca", SERVER_NAME, "crl", "index"}


class CertificateError(HmiError):
    title = "Certificates"


@dataclass(frozen=True)
class Issued:
    terminal_id: str
    serial: int
    cert: Path
    key: Path
    not_after: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    """Write a new file (never over an existing one); keys are 0600 from the start."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
    except FileExistsError:
        raise CertificateError(f"{path} already exists; nothing was overwritten.") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, plant: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, plant),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


class CertificateAuthority:
    """The CA directory: issue, revoke, and the revocation list."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    # -- creation ------------------------------------------------------------

    @classmethod
    def init(cls, directory: Path, plant: str, *, days: int = 3650) -> CertificateAuthority:
        """A new CA in ``directory`` (which must not hold one), with an empty revocation list."""
        if (directory / CA_CERT).exists() or (directory / CA_KEY).exists():
            raise CertificateError(f"{directory} already holds a CA; nothing was overwritten.")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(f"{plant} terminal CA", plant)
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        _write(directory / CA_KEY, _key_pem(key), secret=True)
        _write(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
        ca = cls(directory)
        ca._save_index({})
        ca.write_crl()
        return ca

    # -- reading -------------------------------------------------------------

    @property
    def ca_cert_path(self) -> Path:
        return self.directory / CA_CERT

    @property
    def crl_path(self) -> Path:
        return self.directory / CRL

    def _ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert_path, key_path = self.directory / CA_CERT, self.directory / CA_KEY
        for path in (cert_path, key_path):
            if not path.is_file():
                raise CertificateError(
                    f"{path} is missing: run `hmi certs init-ca --dir {self.directory}` first."
                )
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CertificateError(f"{key_path} is not the CA's EC key.")
        return cert, key

    def plant(self) -> str:
        cert, _ = self._ca()
        attrs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(attrs[0].value) if attrs else "Custos"

    def index(self) -> dict[str, dict[str, str | None]]:
        """Serial (decimal text) → terminal ID, not-after and revoked-at (ISO, or None)."""
        path = self.directory / INDEX
        if not path.is_file():
            return {}
        data: dict[str, dict[str, str | None]] = json.loads(path.read_text())
        return data

    def _save_index(self, index: dict[str, dict[str, str | None]]) -> None:
        _replace(self.directory / INDEX, json.dumps(index, indent=1, sort_keys=True).encode())

    # -- issuing -------------------------------------------------------------

    def issue_terminal(self, terminal_id: str, *, days: int = 825) -> Issued:
        """A client certificate whose common name is ``terminal_id``."""
        if not TERMINAL_ID.fullmatch(terminal_id) or terminal_id.lower() in RESERVED:
            raise CertificateError(
                f"{terminal_id!r} is not a terminal ID: letters, digits and _ . @ -, "
                f"at most 64, not one of {', '.join(sorted(RESERVED))}."
            )
        return self._issue(terminal_id, days, client=True)

    def issue_server(self, *, hosts: list[str], days: int = 825, name: str = SERVER_NAME) -> Issued:
        """The runtime's TLS certificate, valid for ``hosts`` (DNS names or IP addresses)."""
        if not hosts:
            raise CertificateError("Name at least one host the terminals connect to (--host).")
        return self._issue(name, days, client=False, hosts=hosts)

    def _issue(
        self, common_name: str, days: int, *, client: bool, hosts: list[str] | None = None
    ) -> Issued:
        ca_cert, ca_key = self._ca()
        cert_path = self.directory / f"{common_name}.crt"
        key_path = self.directory / f"{common_name}.key"
        if cert_path.exists() or key_path.exists():
            raise CertificateError(
                f"{cert_path} already exists: revoke it (`hmi certs revoke {common_name}`) and "
                "remove the old files before issuing a new one."
            )
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        serial = x509.random_serial_number()
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, self.plant()))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        _write(key_path, _key_pem(key), secret=True)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        index = self.index()
        index[str(serial)] = {
            "id": common_name,
            "kind": "terminal" if client else "server",
            "not_after": cert.not_valid_after_utc.isoformat(),
            "revoked_at": None,
        }
        self._save_index(index)
        return Issued(common_name, serial, cert_path, key_path, cert.not_valid_after_utc)

    # -- revocation ----------------------------------------------------------

    def revoke(self, terminal_id: str) -> list[int]:
        """Revoke every certificate issued to ``terminal_id``; the CRL is rewritten."""
        index = self.index()
        now = _now().isoformat()
        revoked = []
        for serial, entry in index.items():
            if entry["id"] == terminal_id and entry["revoked_at"] is None:
                entry["revoked_at"] = now
                revoked.append(int(serial))
        if not revoked:
            known = any(e["id"] == terminal_id for e in index.values())
            raise CertificateError(
                f"{terminal_id} has no certificate to revoke"
                + (" (all are revoked already)." if known else ".")
            )
        self._save_index(index)
        self.write_crl()
        return revoked

    def write_crl(self, *, days: int = 3650) -> Path:
        ca_cert, ca_key = self._ca()
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + dt.timedelta(days=days))
        )
        for serial, entry in sorted(self.index().items()):
            if entry["revoked_at"] is not None:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(int(serial))
                    .revocation_date(dt.datetime.fromisoformat(entry["revoked_at"]))
                    .build()
                )
        crl = builder.sign(ca_key, hashes.SHA256())
        _replace(self.crl_path, crl.public_bytes(serialization.Encoding.PEM))
        return self.crl_path


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
