"""The plant's private keys, sealed under a passphrase for a backup that must carry them.

By default a backup holds only the public key: a stolen backup cannot be
re-chained, and a restore needs the plant's keys directory. A plant that
wants a backup to be restorable on its own (the keys directory lost with the
host) sets ``[backup] private_keys = true``: the HMAC key and the checkpoint
signing key are then written into the backup as one sealed file, encrypted
with AES-256-GCM under a key derived from a passphrase with scrypt. The
passphrase is never written anywhere; without it the file is useless.

The associated data binds the sealed file to the plant's public key, so a
sealed file moved into another plant's backup does not open.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from hmi.core.errors import BackupError
from hmi.store.keys import HMAC_KEY_FILE, SIGNING_KEY_FILE, KeyRing, _write_secret

SEALED_KEYS_FILE = "private-keys.sealed"
FORMAT = "custos-sealed-keys-v1"
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MIN_PASSPHRASE = 12
SEALED = (HMAC_KEY_FILE, SIGNING_KEY_FILE)


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _aad(key_id: str) -> bytes:
    return f"{FORMAT}|{key_id}".encode()


def seal(keys_dir: Path, key_id: str, passphrase: str) -> bytes:
    """The sealed file's bytes: both private key files, encrypted under ``passphrase``."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(
            f"The backup passphrase must have at least {MIN_PASSPHRASE} characters; "
            "no backup was made."
        )
    plain = json.dumps(
        {name: base64.b64encode((keys_dir / name).read_bytes()).decode() for name in SEALED},
        sort_keys=True,
    ).encode()
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    key = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    box = {
        "format": FORMAT,
        "key_id": key_id,
        "kdf": {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
        "salt": salt.hex(),
        "nonce": nonce.hex(),
        "ciphertext": base64.b64encode(AESGCM(key).encrypt(nonce, plain, _aad(key_id))).decode(),
    }
    return json.dumps(box, indent=1, sort_keys=True).encode()


def unseal(sealed: Path, passphrase: str, public_key: Path, into: Path) -> KeyRing:
    """Write the sealed private keys and ``public_key`` into the new directory ``into``.

    Refuses, naming ``sealed``, a wrong passphrase, a damaged file or a file
    sealed for another plant's keys; the keys are checked to be a pair.
    """
    try:
        box = json.loads(sealed.read_bytes())
        kdf = box["kdf"]
        if box["format"] != FORMAT or kdf["name"] != "scrypt":
            raise ValueError("unknown format")
        key = _derive(
            passphrase, bytes.fromhex(box["salt"]), int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        )
        plain = AESGCM(key).decrypt(
            bytes.fromhex(box["nonce"]),
            base64.b64decode(box["ciphertext"]),
            _aad(str(box["key_id"])),
        )
        files = json.loads(plain)
    except InvalidTag:
        raise BackupError(
            f"{sealed}: the passphrase is wrong or the file is damaged; nothing was restored.",
            title="Restore refused",
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(
            f"{sealed} is not a sealed key file: {exc}", title="Restore refused"
        ) from exc
    into.mkdir(mode=0o700, parents=True)
    for name in SEALED:
        _write_secret(into / name, base64.b64decode(files[name]))
    _write_secret(into / public_key.name, public_key.read_bytes())
    ring = KeyRing.load(into)
    if ring.key_id != box["key_id"]:
        raise BackupError(
            f"{sealed} holds the keys of another plant (key {box['key_id']}, "
            f"backup key {ring.key_id}).",
            title="Restore refused",
        )
    return ring
