"""Writes and driver rebuilds take turns (``hmi.core.driver_gate``)."""

from __future__ import annotations

import asyncio

import pytest

from hmi.core.driver_gate import DriverGate

pytestmark = pytest.mark.timeout(30)


async def test_a_rebuild_waits_for_writes_in_flight_and_new_writes_wait_for_it() -> None:
    gate, order = DriverGate(), []
    answer = asyncio.Event()

    async def write(name: str, until: asyncio.Event | None = None) -> None:
        async with gate.writing():
            order.append(f"{name} sent")
            if until is not None:
                await until.wait()
            order.append(f"{name} answered")

    async def rebuild() -> None:
        async with gate.rebuilding(5):
            order.append("rebuilt")

    first = asyncio.create_task(write("first", answer))
    await asyncio.wait_for(_until(lambda: order == ["first sent"]), 5)
    rebuilding = asyncio.create_task(rebuild())
    await asyncio.wait_for(_until(lambda: gate.held), 5)
    second = asyncio.create_task(write("second"))
    await asyncio.sleep(0)  # let both tasks reach their wait: nothing may move yet
    assert order == ["first sent"] and not rebuilding.done()
    answer.set()
    await asyncio.wait_for(asyncio.gather(first, rebuilding, second), 5)
    assert order == ["first sent", "first answered", "rebuilt", "second sent", "second answered"]
    assert not gate.held


async def test_a_write_that_does_not_finish_gives_the_rebuild_up_and_opens_again() -> None:
    gate, sent, stuck = DriverGate(), asyncio.Event(), asyncio.Event()

    async def write() -> None:
        async with gate.writing():
            sent.set()
            await stuck.wait()

    task = asyncio.create_task(write())
    await asyncio.wait_for(sent.wait(), 5)
    with pytest.raises(TimeoutError):
        async with gate.rebuilding(0.05):
            pytest.fail("rebuilt under a write in flight")
    assert not gate.held
    stuck.set()
    await asyncio.wait_for(task, 5)


async def _until(condition: object) -> None:
    while not condition():  # type: ignore[operator]
        await asyncio.sleep(0.001)
