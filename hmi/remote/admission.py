"""Admitting a TLS terminal: the handshake done where its failure can be recorded.

Were the listener to do the handshake itself, a certificate from another CA,
an expired one or none at all would be turned away before the server heard
of it, and nothing would be on the record. So the listener accepts plain
TCP and the server upgrades each connection here; a failed handshake becomes
a ``CertificateError`` naming why, which the server records as
``terminal_refused`` like a revoked certificate.

Refusals are recorded, but not without bound: a scanner or a misconfigured
terminal retrying every second would otherwise fill the security events.
``RefusalLog`` records the first refusal of each (address, reason) and then at
most one a minute, saying how many it left out.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass

from hmi.remote.certs import CertificateError

HANDSHAKE_S = 10.0
RECORD_AGAIN_S = 60.0


async def handshake(writer: asyncio.StreamWriter, context: ssl.SSLContext) -> None:
    """Upgrade the accepted connection to TLS; CertificateError says why it failed."""
    try:
        await writer.start_tls(context, ssl_handshake_timeout=HANDSHAKE_S)
    except ssl.SSLCertVerificationError as exc:
        raise CertificateError(
            f"TLS handshake refused: the terminal's certificate failed verification "
            f"({exc.verify_message or exc.reason})."
        ) from None
    except ssl.SSLError as exc:
        raise CertificateError(f"TLS handshake refused: {_words(exc)}.") from None
    except TimeoutError:
        raise CertificateError(f"No TLS handshake within {HANDSHAKE_S:.0f} s.") from None
    except (ConnectionError, OSError) as exc:
        raise CertificateError(f"The connection closed during the TLS handshake ({exc}).") from None


def _words(exc: ssl.SSLError) -> str:
    reason = str(exc.reason or "").upper()
    known = {
        "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the terminal presented no certificate",
        "CERTIFICATE_REQUIRED": "the terminal presented no certificate",
        "WRONG_VERSION_NUMBER": "not a TLS 1.3 client (plain TCP or an old TLS version)",
        "HTTP_REQUEST": "an HTTP request, not a terminal",
        "UNSUPPORTED_PROTOCOL": "not a TLS 1.3 client",
    }
    return known.get(reason) or (reason.replace("_", " ").lower() if reason else str(exc))


@dataclass
class _Seen:
    recorded_at: float
    left_out: int = 0


class RefusalLog:
    """Which refusals to record: the first of each (address, reason), then one a minute."""

    def __init__(self, again_s: float = RECORD_AGAIN_S) -> None:
        self.again_s = again_s
        self._seen: dict[tuple[str, str], _Seen] = {}

    def to_record(self, address: str, why: str, now: float | None = None) -> str | None:
        """The detail to record for this refusal, or None to leave it out."""
        now = time.monotonic() if now is None else now
        key = (address, why)
        seen = self._seen.get(key)
        if seen is not None and now - seen.recorded_at < self.again_s:
            seen.left_out += 1
            return None
        left_out = seen.left_out if seen is not None else 0
        self._seen[key] = _Seen(now)
        if len(self._seen) > 10_000:  # bounded, whatever connects
            oldest = sorted(self._seen, key=lambda k: self._seen[k].recorded_at)[:5_000]
            for k in oldest:
                del self._seen[k]
        if left_out:
            return f"{why} (and {left_out} more like it from this address not recorded)"
        return why
