"""Refused TLS terminals are recorded, but a retrying one cannot flood the records."""

from __future__ import annotations

from hmi.remote.admission import RefusalLog


def test_the_same_refusal_is_recorded_once_a_minute_with_a_count() -> None:
    log = RefusalLog(again_s=60)
    why = "the terminal presented no certificate"
    assert log.to_record("10.0.0.5", why, now=0.0) == why
    assert log.to_record("10.0.0.5", why, now=1.0) is None
    assert log.to_record("10.0.0.5", why, now=59.0) is None
    assert log.to_record("10.0.0.6", why, now=2.0) == why  # another address
    assert log.to_record("10.0.0.5", "revoked", now=3.0) == "revoked"  # another reason
    again = log.to_record("10.0.0.5", why, now=61.0)
    assert again == f"{why} (and 2 more like it from this address not recorded)"
    assert log.to_record("10.0.0.5", why, now=122.0) == why


def test_what_it_remembers_is_bounded() -> None:
    log = RefusalLog()
    for n in range(10_050):
        log.to_record(f"host-{n}", "x", now=float(n))
    assert len(log._seen) <= 10_000
    assert log.to_record("host-10049", "x", now=10_050.0) is None  # the newest are kept
