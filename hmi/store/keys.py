"""The data directory's keys: an HMAC key for the chains and an Ed25519 pair for checkpoints.

The keys live in ``DATA/keys`` (directory 0700, files 0600), never in the
database, so a copy of the database alone cannot be re-chained after an
edit. The public key is also what an inspector needs to check checkpoints
without access to the plant.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hmi.core.errors import DataDirectoryError

HMAC_KEY_FILE = "hmac.key"
SIGNING_KEY_FILE = "checkpoint-signing.key"
PUBLIC_KEY_FILE = "checkpoint-signing.pub"


def public_key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise DataDirectoryError(f"{path} is not an Ed25519 public key")
    return key


def verify_signature(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@dataclass(frozen=True)
class KeyRing:
    hmac_key: bytes
    signing_key: Ed25519PrivateKey | None
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        return public_key_id(self.public_key)

    def sign(self, message: bytes) -> bytes:
        if self.signing_key is None:
            raise DataDirectoryError("The checkpoint signing key is not available.")
        return self.signing_key.sign(message)

    @classmethod
    def create(cls, keys_dir: Path) -> KeyRing:
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=False)
        os.chmod(keys_dir, 0o700)
        hmac_key = secrets.token_bytes(32)
        signing = Ed25519PrivateKey.generate()
        _write_secret(keys_dir / HMAC_KEY_FILE, hmac_key.hex().encode() + b"\n")
        _write_secret(
            keys_dir / SIGNING_KEY_FILE,
            signing.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        _write_secret(
            keys_dir / PUBLIC_KEY_FILE,
            signing.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
        return cls(hmac_key, signing, signing.public_key())

    @classmethod
    def load(cls, keys_dir: Path, *, need_signing: bool = True) -> KeyRing:
        """Load the keys, naming the missing or unreadable file when one is."""
        hmac_path = keys_dir / HMAC_KEY_FILE
        public_path = keys_dir / PUBLIC_KEY_FILE
        signing_path = keys_dir / SIGNING_KEY_FILE
        for path in (hmac_path, public_path, *([signing_path] if need_signing else [])):
            if not path.is_file():
                raise DataDirectoryError(f"Key file {path} is missing.", title="Key missing")
        try:
            hmac_key = bytes.fromhex(hmac_path.read_text().strip())
        except ValueError as exc:
            raise DataDirectoryError(f"Key file {hmac_path} is not a valid key.") from exc
        if len(hmac_key) != 32:
            raise DataDirectoryError(f"Key file {hmac_path} is not a valid key.")
        public = load_public_key(public_path)
        signing: Ed25519PrivateKey | None = None
        if need_signing:
            loaded = serialization.load_pem_private_key(signing_path.read_bytes(), password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise DataDirectoryError(f"{signing_path} is not an Ed25519 private key")
            signing = loaded
            if public_key_id(signing.public_key()) != public_key_id(public):
                raise DataDirectoryError(
                    f"{signing_path} and {public_path} are not a key pair.", title="Key mismatch"
                )
        return cls(hmac_key, signing, public)
