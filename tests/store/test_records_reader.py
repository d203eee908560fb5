"""The records desk's reader on a real store: audit pages, and the integrity of just the
rows shown, after the database file was edited while the runtime was stopped (REC-1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hmi.core.api_records import AuditFilter
from hmi.store.db import Store
from hmi.store.records_desk import StoreRecordsReader

Tamper = Callable[..., list[tuple[Any, ...]]]


def reader_of(store: Store) -> StoreRecordsReader:
    return StoreRecordsReader(store)  # no QA service: records only


async def test_pages_newest_first_and_their_chain_reaches_a_signed_checkpoint(
    filled: Any,
) -> None:
    with Store.open(filled.root) as store:
        reader = reader_of(store)
        rows, more = await reader.audit_rows(AuditFilter(limit=3))
        assert [r.seq for r in rows] == [12, 11, 10] and more
        status = await reader.audit_integrity(3, 5)
        assert status.ok, status.summary
        assert status.summary.startswith("OK: audit_trail seq 3..5 chained")
        assert status.checkpoint_seq is not None and status.checkpoint_time is not None
        whole = await reader.audit_integrity(1, 12)
        assert whole.ok and whole.rows_checked == 12


async def test_an_altered_row_is_named_and_pages_apart_from_it_stay_ok(
    filled: Any, tamper: Tamper
) -> None:
    tamper(filled.root, "UPDATE audit_records SET reason = 'nothing happened' WHERE seq = 5")
    with Store.open(filled.root) as store:
        reader = reader_of(store)
        status = await reader.audit_integrity(4, 6)
        assert not status.ok
        assert status.summary.startswith("FAILED: audit_records seq 5: digest does not match")
        assert 5 in status.failed_seqs
        later = await reader.audit_integrity(8, 10)
        assert later.ok, later.summary


async def test_rows_removed_from_the_end_break_the_link_to_the_checkpoint(
    filled: Any, tamper: Tamper
) -> None:
    tamper(filled.root, "DELETE FROM audit_records WHERE seq = 12")
    with Store.open(filled.root) as store:
        status = await reader_of(store).audit_integrity(10, 11)
        assert not status.ok
        assert "vouches for a missing row" in status.summary
        assert 12 in status.failed_seqs
