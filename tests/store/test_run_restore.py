"""SUP-7 across a restart: open runs are rebuilt from the records of a real store, continue
exactly where they were, and the chains still verify."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from copy import deepcopy
from pathlib import Path

import pytest
from custos_testkit import ORIGIN
from sequencer_kit import PASSWORD, demo_config, make_kit

from hmi.bootstrap import Services, open_services
from hmi.core.clock import FakeClock
from hmi.core.procedure_config import Procedure
from hmi.core.runs import RunState, SequenceError
from hmi.core.sequencer import Sequencer
from hmi.core.tag_table import TagDef, TagTable
from hmi.store.procedure_replay import restore_runs
from hmi.store.procedures import ProcedureRecorder
from hmi.store.verify import verify_data_dir


@asynccontextmanager
async def reopened(
    root: Path, config_dir: Path, clock: FakeClock, procedures: Sequence[Procedure] | None = None
) -> AsyncIterator[tuple[Services, Sequencer]]:
    """The data directory opened again (integrity checked) with a new sequencer, runs restored."""
    services = open_services(root, config_dir, clock=clock, origin=ORIGIN)
    try:
        assert services.integrity is not None and services.integrity.ok
        config = demo_config()
        tags = TagTable((TagDef.from_config(t) for t in config.tags), clock=clock)
        seq = Sequencer(
            procedures or config.procedures, tags, services.identity, services.esign,
            ProcedureRecorder(services.store), clock,
        )  # fmt: skip
        await restore_runs(services.store, seq)
        yield services, seq
    finally:
        services.close()


def resumed(services: Services) -> list[tuple[str, str | None, str, str | None]]:
    return [
        (r[0], r[1], r[2], r[3])
        for r in services.store.query(
            "SELECT run_id, state_from, state_to, actor_id FROM procedure_runs "
            "WHERE event = 'resumed' ORDER BY seq"
        )
    ]


async def test_runs_continue_exactly_where_they_were(
    services: Services, make_user: Callable[..., object], clock: FakeClock, config_dir: Path
) -> None:
    kit = await make_kit(services, make_user, clock)
    seq, op = kit.seq, kit.op1
    a = await seq.create_run(op, "sample-imaging")
    await seq.start(op, a.run_id)
    await seq.sign_step(op, a.run_id, "performed", PASSWORD, reason="loaded", user_id="op1")
    await seq.complete_step(op, a.run_id)
    await seq.enter_data(op, a.run_id, "sample_id", "S-2026-007")
    b = await seq.create_run(op, "sample-imaging")
    await seq.start(op, b.run_id)
    kit.clock.advance(601)
    await seq.tick()
    await seq.sign_step(op, b.run_id, "performed", PASSWORD, reason="loaded", user_id="op1")
    await seq.hold(op, b.run_id, "stage jammed", PASSWORD, "op1")
    c = await seq.create_run(op, "bioreactor-startup")
    gone = await seq.create_run(op, "sample-imaging")
    await seq.abort(kit.sup1, gone.run_id, "not needed", PASSWORD, "sup1")
    before = {r.run_id: deepcopy(r) for r in (a, b, c)}
    root = services.store.data_dir.root
    services.close()
    clock.advance(60)

    async with reopened(root, config_dir, clock) as (svc, seq2):
        assert seq2.runs == before
        assert seq2.runs[b.run_id].overdue_reported and seq2.runs[b.run_id].signatures
        assert sorted(resumed(svc)) == sorted(
            [(a.run_id, "running", "running", "system"), (b.run_id, "held", "held", "system"),
             (c.run_id, "idle", "idle", "system")]
        )  # fmt: skip
        assert await seq2.tick() == []  # the overdue step was reported before the restart
        op = await svc.identity.login("op1", PASSWORD, ORIGIN)
        await seq2.enter_data(op, a.run_id, "stain", "DAPI")
        await seq2.complete_step(op, a.run_id)
        await seq2.restart(op, b.run_id, "stage fixed", PASSWORD, "op1")
        with pytest.raises(SequenceError, match="needs no further 'performed' signature"):
            await seq2.sign_step(op, b.run_id, "performed", PASSWORD, reason="x", user_id="op1")
        await seq2.complete_step(op, b.run_id)
        await seq2.start(op, c.run_id)
        after = {r.run_id: deepcopy(r) for r in seq2.runs.values()}
    assert (after[a.run_id].step.id, after[b.run_id].step.id) == ("illumination", "sample-id")

    async with reopened(root, config_dir, clock) as (svc, seq3):
        assert seq3.runs == after
    report = verify_data_dir(root)
    assert report.ok, report.summary()


async def test_a_changed_definition_holds_the_run_until_a_supervisor_aborts_it(
    services: Services, make_user: Callable[..., object], clock: FakeClock, config_dir: Path
) -> None:
    kit = await make_kit(services, make_user, clock)
    run = await kit.seq.create_run(kit.op1, "sample-imaging")
    await kit.seq.start(kit.op1, run.run_id)
    root = services.store.data_dir.root
    services.close()
    changed = [
        p.model_copy(update={"version": "2"}) if p.id == "sample-imaging" else p
        for p in demo_config().procedures
    ]

    async with reopened(root, config_dir, clock, changed) as (svc, seq):
        held = seq.runs[run.run_id]
        assert held.state is RunState.HELD and held.procedure.version == "1"
        why = svc.store.query(
            "SELECT state_from, state_to, reason FROM procedure_runs WHERE event = 'resumed'"
        )
        assert why[0][:2] == ("running", "held")
        assert "now version 2; the run was recorded with version 1" in why[0][2]
        op = await svc.identity.login("op1", PASSWORD, ORIGIN)
        sup = await svc.identity.login("sup1", PASSWORD, ORIGIN)
        with pytest.raises(SequenceError, match="can only be aborted"):
            await seq.restart(op, run.run_id, "carry on", PASSWORD, "op1")
        await seq.abort(sup, run.run_id, "procedure revised during the run", PASSWORD, "sup1")
        assert seq.runs[run.run_id].state is RunState.ABORTED
        rows = svc.store.query(
            "SELECT event, procedure_version, actor_id FROM procedure_runs "
            "WHERE run_id = ? ORDER BY seq",
            [run.run_id],
        )
        assert rows[-1] == ("aborted", "1", "sup1")

    async with reopened(root, config_dir, clock, changed) as (_, seq2):
        assert seq2.runs == {}
    assert verify_data_dir(root).ok
