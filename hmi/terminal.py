"""The terminal UI on a runtime in the same process and event loop (``hmi demo``, ``hmi run``).

A composition root, like bootstrap: it may see the Runtime, while the UI
itself sees only the Terminal API. Link states are seeded from the tag table
(the link events of start-up came before the UI existed), then follow the
runtime's link events.
"""

from __future__ import annotations

import asyncio
import contextlib

from hmi.bootstrap import local_origin
from hmi.runtime import Runtime

DEFAULT_TERMINAL = "T-CONSOLE-1"


def initial_links(runtime: Runtime) -> dict[str, str]:
    """Each device's link as its driver has it now; the link events take over from here.

    A listener that starts after the drivers connected has missed their UP
    events, so the drivers are asked rather than the tags' quality (which is
    BAD until the first scan, just after the link comes up).
    """
    if runtime.plant is None:
        return {}
    table, drivers = runtime.plant.table, runtime.plant.drivers
    links = {}
    for device, tags in table.devices().items():
        driver = drivers.get(device)
        if driver is not None:
            links[device] = driver.link_state.value
        else:
            alive = any(table.get(tag).quality.value != "BAD" for tag in tags)
            links[device] = "UP" if alive else "DOWN"
    return links


async def run_terminal(
    runtime: Runtime, terminal_id: str = DEFAULT_TERMINAL, *, seconds: float | None = None
) -> None:
    """Run the TUI until it is quit; with ``seconds``, headless for that long (a smoke run)."""
    from hmi.ui.app import CustosApp

    assert runtime.api is not None and runtime.services is not None
    app = CustosApp(
        runtime.api,
        local_origin(terminal_id),
        plant_name=runtime.services.config.plant.name,
        clock=runtime.clock,
        links=initial_links(runtime),
    )
    app.attach(runtime.events)
    stopper = None
    if seconds is not None:

        async def stop_later() -> None:
            await asyncio.sleep(seconds)
            app.exit()

        stopper = asyncio.create_task(stop_later())
    try:
        await app.run_async(headless=seconds is not None)
    finally:
        runtime.events.on_link = None
        runtime.events.on_session_warning = None
        runtime.events.on_session_ended = None
        if stopper is not None:
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopper
