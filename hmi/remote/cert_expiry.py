"""Certificates that expire on the runtime host, said before they stop the terminals.

The server certificate, the plant CA and the revocation list all have an
end date; when one passes, every TLS terminal is refused at once (the CRL's
"next update" too: a verifier may treat a stale list as none). The runtime
looks every hour and raises the system alarm
``SYSTEM.certificates_expiring`` a month ahead, with a higher priority once one
has expired; renewing the files clears it at the next look.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from hmi.remote.certs import CA_CERT, CRL, SERVER_NAME

WARN_AHEAD = dt.timedelta(days=30)


@dataclass(frozen=True)
class Expiry:
    file: str
    ends: dt.datetime

    def expired(self, now: dt.datetime) -> bool:
        return self.ends <= now

    def describe(self, now: dt.datetime) -> str:
        day = self.ends.date().isoformat()
        if self.expired(now):
            return f"{self.file} expired on {day}"
        days = self.days_left(now)
        return f"{self.file} expires on {day} (in {days} day{'s' if days != 1 else ''})"

    def days_left(self, now: dt.datetime) -> int:
        """Whole days left, rounded up: 9 days and 23 hours is "in 10 days"."""
        return math.ceil((self.ends - now).total_seconds() / 86400)


def end_dates(directory: Path, server: str = SERVER_NAME) -> list[Expiry]:
    """When the runtime host's server certificate, CA certificate and revocation list end."""
    out = []
    for name in (f"{server}.crt", CA_CERT):
        path = directory / name
        if path.is_file():
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            out.append(Expiry(name, cert.not_valid_after_utc))
    crl_path = directory / CRL
    if crl_path.is_file():
        crl = x509.load_pem_x509_crl(crl_path.read_bytes())
        if crl.next_update_utc is not None:
            out.append(Expiry(CRL, crl.next_update_utc))
    return out


def expiring(directory: Path, now: dt.datetime, ahead: dt.timedelta = WARN_AHEAD) -> list[Expiry]:
    """The end dates within ``ahead`` of ``now`` (or past), soonest first."""
    return sorted((e for e in end_dates(directory) if e.ends - now <= ahead), key=lambda e: e.ends)
