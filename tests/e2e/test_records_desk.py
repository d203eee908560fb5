"""The records desk of the Terminal API on the running runtime: audit pages with their
integrity, signatures with their manifestation, trends, QA SQL recorded and guarded,
and refusals for those without the permission (SUP-11, 11.10(e), 11.50)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from custos_plant import CONSOLE, QA_DESK, ApiPlant, signed
from custos_testkit import PLANT_PASSWORD, until

from hmi.core.api import SetpointRequest
from hmi.core.api_records import AuditFilter, JournalFilter, RecordsDesk, answer_csv
from hmi.core.errors import HmiError, PermissionDenied, QueryRefused
from hmi.store.records_desk import StoreRecordsReader

pytestmark = pytest.mark.timeout(120)


def desk_of(plant: ApiPlant) -> RecordsDesk:
    assert plant.api.records is not None
    return plant.api.records


async def write_ph(plant: ApiPlant, value: float) -> None:
    op = await plant.login("op1")
    request = SetpointRequest("BR101.PH_SP", value, "growth phase", signed("op1"))
    outcome = await plant.api.request_write(op, CONSOLE, request)
    assert outcome.outcome == "done", outcome


async def test_audit_page_filters_and_shows_its_integrity_and_signatures(
    api_plant: ApiPlant,
) -> None:
    plant = api_plant
    desk = desk_of(plant)
    await write_ph(plant, 7.0)
    sup = await plant.login("sup1")

    page = await desk.audit_page(sup, AuditFilter(user_id="op1", action="write_setpoint"))
    assert [r.outcome for r in page.rows] == ["done", "attempt"]  # newest first
    row = page.rows[0]
    assert (row.actor_id, row.target, row.new_value, row.outcome) == (
        "op1",
        "BR101.PH_SP",
        "7.0",
        "done",
    )
    assert page.integrity.ok, page.integrity.summary
    assert page.integrity.summary.startswith("OK: audit_trail seq")
    assert page.integrity.rows_checked >= 1

    [sig] = await desk.signatures(sup, row.seq)
    assert sig.signer_id == "op1" and sig.meaning == "performed"
    assert sig.manifestation.startswith("Olga Operator (op1), ")
    assert sig.manifestation.endswith(", performed")
    offset = sig.signed_at.astimezone().strftime("%z")
    assert offset in sig.manifestation  # local time with its UTC offset

    # Time filter: nothing in the hour after the write; the write in the hour before it.
    later = await desk.audit_page(sup, AuditFilter(start=row.ts + timedelta(hours=1)))
    assert later.rows == () and later.integrity.ok
    around = await desk.audit_page(
        sup,
        AuditFilter(
            start=row.ts - timedelta(hours=1), end=row.ts + timedelta(seconds=1), target="ph_sp"
        ),
    )
    assert [r.seq for r in around.rows] == [r.seq for r in page.rows]

    # Paging: one row at a time, newest first.
    first = await desk.audit_page(sup, AuditFilter(limit=1))
    assert first.more
    second = await desk.audit_page(sup, AuditFilter(limit=1, before_seq=first.rows[0].seq))
    assert second.rows[0].seq < first.rows[0].seq


async def test_trend_shows_values_after_they_changed_with_limits(api_plant: ApiPlant) -> None:
    plant = api_plant
    desk = desk_of(plant)
    await write_ph(plant, 7.0)
    await write_ph(plant, 7.2)
    await write_ph(plant, 7.4)
    history = plant.runtime.history
    assert history is not None
    assert await asyncio.to_thread(history.flush)
    op = await plant.login("op2")
    now = plant.runtime.clock.now()
    trend = await desk.trend(op, "BR101.PH_SP", now - timedelta(hours=1), now + timedelta(1))
    values = [v for _, v in trend.points]
    assert values[-3:] == pytest.approx([7.0, 7.2, 7.4])
    assert not trend.downsampled
    assert trend.units == "pH" and trend.low is not None and trend.high is not None

    few = await desk.trend(op, "BR101.PH_SP", now - timedelta(hours=1), now + timedelta(1), 2)
    assert len(few.points) <= 2 and few.downsampled
    with pytest.raises(HmiError, match="no tag"):
        await desk.trend(op, "NOPE", now - timedelta(hours=1), now)


async def test_qa_queries_are_recorded_refused_by_the_guard_and_cancellable(
    api_plant: ApiPlant,
) -> None:
    plant = api_plant
    desk = desk_of(plant)
    qa = await plant.login("qa1", QA_DESK)
    answer = await desk.query(qa, "SELECT seq, ts, event FROM security_events ORDER BY seq")
    assert answer.columns == ("seq", "ts", "event")
    assert answer.row_count == len(answer.rows) > 0 and not answer.truncated
    assert answer.elapsed_s >= 0
    assert answer_csv(answer).splitlines()[0] == "seq,ts,event"

    with pytest.raises(QueryRefused, match="documented views"):
        await desk.query(qa, "SELECT * FROM user_accounts")
    recorded = plant.query("SELECT actor_id, outcome FROM qa_queries ORDER BY seq")
    assert recorded[-2:] == [("qa1", "ok"), ("qa1", "refused")]

    views = await desk.views(qa)
    assert ("signer_name", "VARCHAR") in views["esignatures"]
    assert "user_accounts" not in views

    # A slow query is cancelled from the terminal; the event loop stays free while it runs.
    digits = ", ".join(f"({i})" for i in range(10))
    slow = (
        f"WITH t(x) AS (VALUES {digits}) SELECT count(*) FROM t a, t b, t c, t d, t e, t f, "
        "t g, t h, t i, t j WHERE a.x + b.x + c.x + d.x + e.x + f.x + g.x + h.x + i.x = j.x"
    )
    reader = desk.reader
    assert isinstance(reader, StoreRecordsReader) and reader.qa is not None
    task = asyncio.create_task(desk.query(qa, slow))
    running = reader.qa._running

    def started() -> bool:
        query = running.get(qa.session_id)
        return task.done() or (query is not None and query.cursor is not None)

    await until(started, what="the slow query runs")
    assert not task.done(), task.exception()
    ticks = 0
    while ticks < 5:  # the loop runs other work while DuckDB computes
        await asyncio.sleep(0.01)
        ticks += 1
    assert not task.done()
    assert desk.cancel(qa)
    with pytest.raises(QueryRefused, match="cancelled"):
        await asyncio.wait_for(task, 10)
    assert plant.query("SELECT outcome FROM qa_queries ORDER BY seq DESC LIMIT 1") == [("refused",)]


async def test_records_are_refused_to_those_without_permission(api_plant: ApiPlant) -> None:
    plant = api_plant
    desk = desk_of(plant)
    op = await plant.login("op1")
    with pytest.raises(PermissionDenied):
        await desk.audit_page(op, AuditFilter())
    with pytest.raises(PermissionDenied):
        await desk.alarm_history(op, JournalFilter())
    with pytest.raises(PermissionDenied):
        await desk.security_events(op, JournalFilter())
    with pytest.raises(PermissionDenied):
        await desk.query(op, "SELECT 1")
    refused = plant.query(
        "SELECT action FROM audit_trail WHERE actor_id = 'op1' AND outcome = 'refused' ORDER BY seq"
    )
    assert [r[0] for r in refused] == [
        "view_audit_trail",
        "view_alarm_history",
        "view_security_events",
    ]
    assert plant.query("SELECT outcome FROM qa_queries WHERE actor_id = 'op1'") == [("refused",)]

    # Journals for those who may see them; notifications for one's own roles.
    sup = await plant.login("sup1")
    assert isinstance(await desk.alarm_history(sup, JournalFilter(subject="BR101.PH")), list)
    qa = await plant.login("qa1", QA_DESK)
    events = await desk.security_events(qa, JournalFilter(subject="op1", event="login"))
    assert events and all(e.user_id == "op1" or e.actor_id == "op1" for e in events)
    assert all(n.audience in ("qa",) for n in await desk.notifications(qa))
    assert PLANT_PASSWORD not in str(plant.query("SELECT * FROM audit_trail"))


async def test_the_runtime_stops_while_a_query_runs(api_plant: ApiPlant) -> None:
    plant = api_plant
    desk = desk_of(plant)
    qa = await plant.login("qa1", QA_DESK)
    digits = ", ".join(f"({i})" for i in range(10))
    slow = (
        f"WITH t(x) AS (VALUES {digits}) SELECT count(*) FROM t a, t b, t c, t d, t e, t f, "
        "t g, t h, t i, t j WHERE a.x + b.x + c.x + d.x + e.x + f.x + g.x + h.x + i.x = j.x"
    )
    reader = desk.reader
    assert isinstance(reader, StoreRecordsReader) and reader.qa is not None
    task = asyncio.create_task(desk.query(qa, slow))
    running = reader.qa._running
    await until(
        lambda: (q := running.get(qa.session_id)) is not None and q.cursor is not None,
        what="the slow query runs",
    )
    await asyncio.wait_for(plant.runtime.stop(), 30)
    assert plant.runtime.services is None
    with pytest.raises(HmiError):
        await asyncio.wait_for(task, 10)
