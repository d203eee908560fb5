"""Self-signed OPC UA application instance certificates for tests and the simulator.

OPC UA peers identify each other by application instance certificates whose
subjectAltName carries the application URI (OPC 10000-6 §6.2.2); a certificate
without it is refused by most servers and clients. Tests need fresh pairs in a
temporary directory, so this writes them instead of shipping key material in
the repository.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True, slots=True)
class CertPair:
    """Where a generated certificate (DER) and its private key (PEM, unencrypted) were written."""

    cert: Path
    key: Path
    application_uri: str


def write_self_signed(
    directory: Path,
    name: str,
    application_uri: str,
    *,
    hostnames: tuple[str, ...] = ("localhost",),
    days: int = 30,
    key_size: int = 2048,
) -> CertPair:
    """Write ``<name>.der`` and ``<name>.key.pem`` into ``directory``.

    The certificate is usable by both clients and servers (serverAuth and
    clientAuth), names the application URI, the given host names, this host's
    name and 127.0.0.1 in subjectAltName, and has the key usages Basic256Sha256
    needs (signature, key and data encipherment).
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Custos test"),
        ]
    )
    dns_names = dict.fromkeys((*hostnames, socket.gethostname()))
    alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    alt_names += [x509.DNSName(host) for host in dns_names]
    alt_names.append(x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")))
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.der"
    key_path = directory / f"{name}.key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return CertPair(cert=cert_path, key=key_path, application_uri=application_uri)
