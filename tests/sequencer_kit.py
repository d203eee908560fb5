"""A sequencer on the demo procedures and tags, with a real store and a fake clock.

Tag values are set in the tag table directly, as the scanner would; no
devices are involved. Users: ``op1`` and ``op2`` (operators), ``sup1``
(supervisor), all with password ``PASSWORD``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from custos_testkit import ORIGIN

from drivers.base import Quality, Sample
from hmi.bootstrap import Services
from hmi.core.clock import FakeClock
from hmi.core.config import PlantConfig, load_config
from hmi.core.identity import Session
from hmi.core.sequencer import Sequencer
from hmi.core.tag_table import TagDef, TagTable
from hmi.core.tags import TagScalar
from hmi.store.procedures import ProcedureRecorder

DEMO = Path(__file__).resolve().parents[1] / "config" / "demo"
PASSWORD = "Working9pass"
_DEMO_CONFIG: list[PlantConfig] = []


def demo_config() -> PlantConfig:
    if not _DEMO_CONFIG:
        _DEMO_CONFIG.append(load_config(DEMO))
    return _DEMO_CONFIG[0]


def set_tag(table: TagTable, name: str, value: TagScalar | None, good: bool = True) -> None:
    device = table.definition(name).device
    quality = Quality.GOOD if good else Quality.BAD
    table.apply(device, [Sample(name, value, quality, "" if good else "link lost")])


@dataclass
class Kit:
    services: Services
    seq: Sequencer
    tags: TagTable
    clock: FakeClock
    op1: Session
    op2: Session
    sup1: Session

    def set(self, name: str, value: TagScalar | None, good: bool = True) -> None:
        set_tag(self.tags, name, value, good)


async def make_kit(services: Services, make_user: object, clock: FakeClock) -> Kit:
    config = demo_config()
    tags = TagTable((TagDef.from_config(t) for t in config.tags), clock=clock)
    seq = Sequencer(
        config.procedures,
        tags,
        services.identity,
        services.esign,
        ProcedureRecorder(services.store),
        clock,
    )
    assert callable(make_user)
    await make_user("op1", "Olga Operator", "operator")
    await make_user("op2", "Otto Operator", "operator")
    await make_user("sup1", "Susan Supervisor", "supervisor")
    login = services.identity.login
    return Kit(
        services,
        seq,
        tags,
        clock,
        await login("op1", PASSWORD, ORIGIN),
        await login("op2", PASSWORD, ORIGIN),
        await login("sup1", PASSWORD, ORIGIN),
    )
