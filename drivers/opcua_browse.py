"""Browsing an OPC UA server's address space (``hmi browse``): what an engineer maps to tags."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds

from drivers.opcua_client import OpcUaSettings, close_client, open_client

_VT = ua.VariantType


@dataclass(frozen=True, slots=True)
class BrowseEntry:
    node_id: str
    path: str
    node_class: str
    data_type: str = ""
    writable: bool = False


# -- browse -----------------------------------------------------------------

_BROWSE_CLASSES = ua.NodeClass.Object | ua.NodeClass.Variable | ua.NodeClass.Method


async def browse(
    url: str,
    *,
    depth: int = 3,
    root: str = "i=85",
    settings: OpcUaSettings | None = None,
    include_standard: bool = False,
) -> list[BrowseEntry]:
    """Objects, variables and methods below ``root`` (default: the Objects folder).

    For filling in tag addresses: each entry has the node id, a browse path of
    names, the node class, the variable's DataType and whether it is writable.
    Standard (namespace 0) nodes such as the Server object are skipped unless
    ``include_standard``. ``settings`` gives security and identity.
    """
    conf = dataclasses.replace(settings or OpcUaSettings(url), endpoint=url)
    client = await open_client(conf)
    try:
        return await _browse(client, ua.NodeId.from_string(root), depth, include_standard)
    finally:
        await close_client(client, conf.request_timeout_s)


async def _browse(
    client: Client, root: ua.NodeId, depth: int, include_standard: bool
) -> list[BrowseEntry]:
    found: list[tuple[ua.ReferenceDescription, str]] = []
    level: list[tuple[ua.NodeId, str]] = [(root, "")]
    seen = {root}
    for _ in range(depth):
        if not level:
            break
        descs = [
            ua.BrowseDescription(
                NodeId=nid,
                BrowseDirection=ua.BrowseDirection.Forward,
                ReferenceTypeId=ua.NodeId(ua.Int32(ObjectIds.HierarchicalReferences)),
                IncludeSubtypes=True,
                NodeClassMask=ua.UInt32(_BROWSE_CLASSES),
                ResultMask=ua.UInt32(ua.BrowseResultMask.All),
            )
            for nid, _ in level
        ]
        results = await client.uaclient.browse(ua.BrowseParameters(NodesToBrowse=descs))
        next_level: list[tuple[ua.NodeId, str]] = []
        for (_, path), result in zip(level, results, strict=True):
            refs = list(result.References)
            point = result.ContinuationPoint
            while point:
                (more,) = await client.uaclient.browse_next(
                    ua.BrowseNextParameters(ContinuationPoints=[point])
                )
                refs += more.References
                point = more.ContinuationPoint
            for ref in refs:
                nid = ref.NodeId
                if nid in seen or (nid.NamespaceIndex == 0 and not include_standard):
                    continue
                seen.add(nid)
                child = f"{path}/{ref.BrowseName.Name}" if path else str(ref.BrowseName.Name)
                found.append((ref, child))
                if ref.NodeClass != ua.NodeClass.Method:
                    next_level.append((nid, child))
        level = next_level
    variables = [ref.NodeId for ref, _ in found if ref.NodeClass == ua.NodeClass.Variable]
    dtypes = await client.uaclient.read_attributes(variables, AttributeIds.DataType)
    access = await client.uaclient.read_attributes(variables, AttributeIds.UserAccessLevel)
    info: dict[ua.NodeId, tuple[str, bool]] = {}
    for nid, dt, al in zip(variables, dtypes, access, strict=True):
        dt_id = dt.Value.Value if dt.Value is not None else None
        level_bits = al.Value.Value if al.Value is not None and al.Value.Value is not None else 0
        writable = bool(int(level_bits) & (1 << ua.AccessLevel.CurrentWrite))
        info[nid] = (await _type_name(client, dt_id), writable)
    entries = []
    for ref, path in found:
        dtype, writable = info.get(ref.NodeId, ("", False))
        entries.append(
            BrowseEntry(ref.NodeId.to_string(), path, ref.NodeClass.name, dtype, writable)
        )
    return entries


async def _type_name(client: Client, dtype: Any) -> str:
    if not isinstance(dtype, ua.NodeId):
        return ""
    ident = dtype.Identifier
    if dtype.NamespaceIndex == 0 and isinstance(ident, int) and 1 <= ident <= 25:
        return _VT(ident).name
    try:
        name = await client.get_node(dtype).read_browse_name()
    except Exception:
        return dtype.to_string()
    return str(name.Name)


def format_browse(entries: Sequence[BrowseEntry]) -> str:
    """A plain-text table of ``entries`` for a terminal."""
    header = ("NODE ID", "PATH", "CLASS", "TYPE", "RW")
    rows = [header]
    for e in entries:
        access = "rw" if e.writable else ("r" if e.node_class == "Variable" else "")
        rows.append((e.node_id, e.path, e.node_class, e.data_type, access))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"
