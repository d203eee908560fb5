"""The store side of configuration change control: version events, written and read back.

Rows are chained (``CONFIG_VERSIONS`` in ``hmi.store.tables``); the core
derives each version's state from them (``hmi.core.config_versions``), so
there is no status column that could be changed behind the chain's back.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hmi.core.records import ConfigVersionEntry, Origin
from hmi.store.db import Store
from hmi.store.tables import CONFIG_VERSIONS

_READ = (
    "version",
    "event",
    "actor_id",
    "actor_name",
    "terminal_id",
    "source",
    "config_sha256",
    "base_version",
    "restores_version",
    "files_json",
    "changed_files",
    "diff",
    "required",
    "actor_role",
    "reason",
    "signature_ids",
    "detail",
    "seq",
    "ts",
)


def version_row(record: ConfigVersionEntry) -> dict[str, object]:
    """The chained row of one version event."""
    return {
        "version": record.version,
        "event": record.event,
        "base_version": record.base_version,
        "restores_version": record.restores_version,
        "files_json": record.files_json,
        "config_sha256": record.config_sha256,
        "changed_files": record.changed_files,
        "diff": record.diff,
        "required": record.required,
        "actor_id": record.actor_id,
        "actor_name": record.actor_name,
        "actor_role": record.actor_role,
        "terminal_id": record.origin.terminal_id,
        "source": record.origin.source,
        "reason": record.reason,
        "signature_ids": ",".join(record.signature_ids) or None,
        "detail": record.detail,
    }


def _entry(row: tuple[Any, ...]) -> ConfigVersionEntry:
    v = dict(zip(_READ, row, strict=True))
    return ConfigVersionEntry(
        version=int(v["version"]),
        event=v["event"],
        actor_id=v["actor_id"],
        actor_name=v["actor_name"],
        origin=Origin(v["terminal_id"] or "", v["source"] or ""),
        config_sha256=v["config_sha256"],
        base_version=v["base_version"],
        restores_version=v["restores_version"],
        files_json=v["files_json"],
        changed_files=v["changed_files"],
        diff=v["diff"],
        required=v["required"],
        actor_role=v["actor_role"],
        reason=v["reason"],
        signature_ids=tuple(filter(None, (v["signature_ids"] or "").split(","))),
        detail=v["detail"],
        seq=v["seq"],
        ts=v["ts"],
    )


class StoreConfigVersions:
    """Implements the core's ``ConfigVersionReader`` on a ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def read_events(self) -> list[ConfigVersionEntry]:
        """Every version event, oldest first (empty for data written before change control)."""
        present = self.store.query(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
            [CONFIG_VERSIONS.name],
        )
        if not present[0][0]:
            return []
        rows = self.store.query(
            f"SELECT {', '.join(_READ)} FROM {CONFIG_VERSIONS.name} ORDER BY seq"
        )
        return [_entry(r) for r in rows]

    async def config_events(self) -> list[ConfigVersionEntry]:
        return await asyncio.to_thread(self.read_events)
