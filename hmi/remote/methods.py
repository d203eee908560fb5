"""Which Terminal API calls a remote terminal may make, and how their parameters arrive.

The method table is read from the API's classes: every public method of
``TerminalAPI`` and of its desks (``alarms.acknowledge``, ``records.query``,
...), nothing else: the services behind the API (``identity``, ``commands``,
``table``) are not reachable. Two parameters never come from the wire: the
``session`` is the one this connection logged in, and the ``origin`` is the
one the server established for the connection (certificate or socket peer).
A terminal cannot act in another terminal's session or claim another place.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hmi.core.api import TerminalAPI
from hmi.core.api_admin import AdminDesk
from hmi.core.api_alarms import AlarmDesk
from hmi.core.api_config import ConfigDesk
from hmi.core.api_procedures import ProcedureDesk
from hmi.core.api_records import RecordsDesk
from hmi.core.api_reports import ReportDesk

DESKS: dict[str, type] = {
    "alarms": AlarmDesk,
    "procedures": ProcedureDesk,
    "records": RecordsDesk,
    "admin": AdminDesk,
    "config": ConfigDesk,
    "reports": ReportDesk,
}
INJECTED = ("session", "origin")
SESSIONLESS = frozenset({"login"})
"""The only method a terminal may call without a session: everything else the
runtime does for someone, and the server supplies who. A public method that
takes no session (the runtime's own hooks, such as ``ConfigDesk.now_approved``)
is never on the wire."""


@dataclass(frozen=True)
class Method:
    name: str
    """On the wire: ``login``, ``alarms.acknowledge``."""
    desk: str | None
    attribute: str
    params: dict[str, Any]
    """Parameter name → resolved annotation, for the parameters the wire carries."""
    required: frozenset[str]
    injects: tuple[str, ...]
    order: tuple[str, ...]
    """Every parameter, injected ones included, in the signature's order."""
    returns: Any
    is_async: bool

    def bind(self, api: TerminalAPI) -> Callable[..., Any]:
        target: Any = api if self.desk is None else getattr(api, self.desk)
        if target is None:
            raise LookupError(f"{self.desk} is not available on this plant")
        return typing.cast("Callable[..., Any]", getattr(target, self.attribute))


def _methods_of(cls: type, desk: str | None) -> dict[str, Method]:
    table: dict[str, Method] = {}
    for attribute, fn in inspect.getmembers(cls, inspect.isfunction):
        if attribute.startswith("_"):
            continue
        hints = typing.get_type_hints(fn)
        signature = inspect.signature(fn)
        params: dict[str, Any] = {}
        required: set[str] = set()
        injects: list[str] = []
        for pname, param in signature.parameters.items():
            if pname == "self":
                continue
            if pname in INJECTED:
                injects.append(pname)
                continue
            params[pname] = hints.get(pname, Any)
            if param.default is inspect.Parameter.empty:
                required.add(pname)
        name = attribute if desk is None else f"{desk}.{attribute}"
        if "session" not in injects and name not in SESSIONLESS:
            continue
        table[name] = Method(
            name,
            desk,
            attribute,
            params,
            frozenset(required),
            tuple(injects),
            tuple(p for p in signature.parameters if p != "self"),
            hints.get("return", Any),
            inspect.iscoroutinefunction(fn),
        )
    return table


def method_table() -> dict[str, Method]:
    """Every method a remote terminal may call, by its wire name."""
    table = _methods_of(TerminalAPI, None)
    for desk, cls in DESKS.items():
        table.update(_methods_of(cls, desk))
    return table


METHODS = method_table()


def _type_name(tp: Any) -> str:
    text = getattr(tp, "__name__", None) if not typing.get_args(tp) else None
    text = text or re.sub(r"\b(?:[a-z_][a-z0-9_]*\.)+", "", str(tp))
    return text.replace("NoneType", "None").replace("|", "\\|")


def markdown_table() -> str:
    """The method table as docs/protocol.md shows it (``python -m hmi.remote.methods``)."""
    rows = ["| method | params | result | session / origin |", "|---|---|---|---|"]
    for name, m in sorted(METHODS.items()):
        params = ", ".join(f"`{p}`: {_type_name(t)}" for p, t in m.params.items()) or "—"
        injected = " + ".join(m.injects) or "—"
        rows.append(f"| `{name}` | {params} | {_type_name(m.returns)} | {injected} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
