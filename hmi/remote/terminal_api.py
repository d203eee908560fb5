"""The Terminal API at the far end of a link, for the same TUI that runs in the runtime's process.

The screens call the API in two ways: actions (``await api.request_write``),
which go over the link as they are, and reads made many times a second
(``api.read_tags``, ``api.alarms.active``), which must answer at once. Reads
are answered from a copy the server keeps current (``hmi.remote.state``);
what changes only with the approved configuration (tag definitions,
cameras, procedures, configuration files) is fetched at login and again
whenever the runtime applies a configuration version. After every
action the copy is refreshed before the action returns, so a screen that
reads right after acting sees the result. Checks stay in the runtime: the
copy only ever holds what the runtime showed this session.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from hmi.core.api_records import NotificationRow
from hmi.core.api_types import (
    AlarmBanner,
    AlarmView,
    CameraSettingView,
    ConfigDiff,
    ConfigFile,
    PendingApproval,
    ProcedureInfo,
    RunView,
    TagInfo,
    TagReading,
)
from hmi.core.config_check import diff_text
from hmi.core.errors import HmiError, SessionEnded
from hmi.core.identity import Session, SessionStatus
from hmi.core.records import Origin
from hmi.core.runs import RunState
from hmi.core.step_rules import Choice
from hmi.remote.client import RpcClient
from hmi.remote.codec import decode
from hmi.remote.methods import METHODS, Method

OPEN_STATES = {RunState.IDLE.value, RunState.RUNNING.value, RunState.HELD.value}
SECTION_TYPES: dict[str, Any] = {
    "alarms": list[AlarmView],
    "hidden": list[AlarmView],
    "banner": AlarmBanner | None,
    "approvals": list[PendingApproval],
    "choices": list[Choice],
    "runs": list[RunView],
}


class Mirror:
    """The terminal's copy of what its session shows, as the server last pushed it."""

    def __init__(self) -> None:
        self.sections: dict[str, Any] = {}
        self.session: dict[str, Any] = {}
        self.session_at = time.monotonic()
        self.links: dict[str, str] = {}
        self.tags: dict[str, TagReading] = {}
        self.permissions: frozenset[str] = frozenset()
        self.definitions: list[TagInfo] = []
        self.cameras: dict[str, list[CameraSettingView]] = {}
        self.procedures: list[ProcedureInfo] = []
        self.config_files: list[ConfigFile] = []
        self.images: dict[str, bytes] = {}
        self.ended: str | None = None
        self.config_mark: Any = None
        """The runtime's count of configuration changes, as last pushed."""

    def apply_sections(self, raw: dict[str, Any]) -> None:
        for name, value in raw.items():
            if name == "session":
                self.session = dict(value)
                self.session_at = time.monotonic()
            elif name == "links":
                self.links = dict(value)
            elif name == "config":
                self.config_mark = value
            elif name in SECTION_TYPES:
                self.sections[name] = decode(SECTION_TYPES[name], value, name)

    def apply_tags(self, raw: list[Any]) -> None:
        """Readings as pushed: a thousand a second per terminal, so the common shape is
        decoded directly; anything else goes through the checking codec."""
        for item in raw:
            try:
                reading = _fast_reading(item)
            except (KeyError, TypeError, ValueError):
                reading = decode(TagReading, item, "tags")
            self.tags[reading.tag] = reading

    def seconds_left(self) -> float:
        if self.ended is not None or not self.session:
            return 0.0
        elapsed = time.monotonic() - self.session_at
        return max(0.0, float(self.session["seconds_left"]) - elapsed)


def _fast_reading(item: dict[str, Any]) -> TagReading:
    value = item["value"]
    if not (value is None or isinstance(value, bool | int | float | str)):
        raise TypeError("not a tag value")
    tag, quality, units, reason = item["tag"], item["quality"], item["units"], item["reason"]
    if not all(isinstance(x, str) for x in (tag, quality, units, reason)) or len(item) != 6:
        raise TypeError("not a reading")
    return TagReading(tag, value, quality, units, datetime.fromisoformat(item["time"]), reason)


class RemoteDesk:
    """One desk of the API (``alarms``, ``procedures``...) across the link."""

    def __init__(self, api: RemoteTerminalAPI, name: str, reads: dict[str, Callable[..., Any]]):
        self._api = api
        self._name = name
        self._reads = reads

    def __getattr__(self, attribute: str) -> Any:
        if attribute in self._reads:
            return self._reads[attribute]
        method = METHODS.get(f"{self._name}.{attribute}")
        if method is None:
            raise AttributeError(attribute)
        return self._api.action(method)


Dial = Callable[[], Awaitable[tuple[RpcClient, dict[str, Any]]]]
"""Opens a new link and says hello again: how a terminal gets back after a drop."""

RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 10.0


class RemoteTerminalAPI:
    """Stands in for ``TerminalAPI`` in the TUI when the runtime is elsewhere."""

    def __init__(self, client: RpcClient, hello: dict[str, Any], dial: Dial | None = None) -> None:
        self.client = client
        self.dial = dial
        self.on_link_lost: Callable[[str], None] | None = None
        self.on_link_back: Callable[[], None] | None = None
        self.mirror = Mirror()
        self.plant: str = str(hello.get("plant", ""))
        self.on_session_ended: Callable[[str], None] | None = None
        self.on_session_warning: Callable[[], None] | None = None
        self.on_links: Callable[[dict[str, str]], None] | None = None
        self.on_notice: Callable[[NotificationRow], None] | None = None
        self.session: Session | None = None
        self.origin = Origin(str(hello.get("terminal", "")), str(hello.get("source", "")))
        client.listen(self._event)
        desks = set(hello.get("desks", []))
        m = self.mirror
        self.alarms = (
            RemoteDesk(
                self,
                "alarms",
                {
                    "active": lambda session: list(m.sections.get("alarms", [])),
                    "hidden": lambda session: list(m.sections.get("hidden", [])),
                    "banner": lambda session: m.sections.get("banner") or AlarmBanner(0, None),
                },
            )
            if "alarms" in desks
            else None
        )
        self.procedures = (
            RemoteDesk(
                self,
                "procedures",
                {
                    "procedures": lambda session: list(m.procedures),
                    "runs": self._runs,
                    "view": self._view,
                },
            )
            if "procedures" in desks
            else None
        )
        self.records = (
            RemoteDesk(self, "records", {"cancel": self._cancel}) if "records" in desks else None
        )
        self.admin = RemoteDesk(self, "admin", {}) if "admin" in desks else None
        self.reports = RemoteDesk(self, "reports", {}) if "reports" in desks else None
        self.config = (
            RemoteDesk(
                self,
                "config",
                {"files": lambda session: list(m.config_files), "diff": self._diff},
            )
            if "config" in desks
            else None
        )

    # -- actions ---------------------------------------------------------------------

    def action(self, method: Method) -> Callable[..., Any]:
        """An awaitable call of ``method``: positional arguments as the API takes them."""

        async def call(*args: Any, **kwargs: Any) -> Any:
            named = dict(zip(method.order, args, strict=False))
            named.update(kwargs)
            params = {k: v for k, v in named.items() if k not in method.injects}
            value = await self.client.call(method.name, **params)
            if method.name != "logout":
                await self.refresh()
            return value

        return call

    def __getattr__(self, attribute: str) -> Any:
        method = METHODS.get(attribute)
        if method is None or not method.is_async:
            raise AttributeError(attribute)
        return self.action(method)

    async def login(self, user_id: str, password: str, origin: Origin) -> Session:
        session: Session = await self.client.call("login", user_id=user_id, password=password)
        self.mirror = Mirror() if self.mirror.ended else self.mirror
        self.mirror.ended = None
        self.session = session
        await self._fetch(session)
        return session

    async def change_password(self, session: Session, old: str, new: str) -> None:
        await self.client.call("change_password", old=old, new=new)
        session.password_change_required = False
        await self._fetch(session)

    async def capture(self, session: Session, origin: Origin, request: Any) -> Any:
        outcome = await self.client.call("capture", request=request)
        with contextlib.suppress(HmiError):
            self.mirror.images[outcome.sha256] = await self.client.call(
                "capture_image", sha256=outcome.sha256
            )
        await self.refresh()
        return outcome

    async def refresh(self) -> None:
        """The whole state again, so a read right after an action sees its result."""
        try:
            state = await self.client.request("state", {})
        except SessionEnded:
            return
        links = self.mirror.links
        self._apply_sections(state["sections"])
        self.mirror.apply_tags(state["tags"])
        if self.on_links is not None and self.mirror.links != links:
            self.on_links(self.mirror.links)

    def _apply_sections(self, raw: dict[str, Any]) -> None:
        """Apply pushed sections; a new configuration mark means fetch the definitions again."""
        m = self.mirror
        before = m.config_mark
        m.apply_sections(raw)
        if before is not None and m.config_mark != before and self.session is not None:
            task = asyncio.get_running_loop().create_task(self._refetch(m))
            _background.add(task)
            task.add_done_callback(_background.discard)

    async def _refetch(self, mirror: Mirror) -> None:
        with contextlib.suppress(HmiError):
            await self._fetch_definitions(mirror)

    async def _fetch(self, session: Session) -> None:
        m = self.mirror
        m.permissions = await self.client.call("permissions")
        if session.password_change_required:
            return
        await self.refresh()
        await self._fetch_definitions(m)

    async def _fetch_definitions(self, m: Mirror) -> None:
        """What changes only with the approved configuration; tags it no longer has go."""
        definitions: list[TagInfo] = await self.client.call("tag_definitions")
        cameras = {}
        for camera in await self.client.call("cameras"):
            cameras[camera] = await self.client.call("camera_settings", camera=camera)
        procedures = m.procedures
        if self.procedures is not None:
            procedures = await self.client.call("procedures.procedures")
        files = m.config_files
        if self.config is not None and "edit_configuration" in m.permissions:
            files = await self.client.call("config.files")
        names = {d.name for d in definitions}
        m.definitions, m.cameras, m.procedures, m.config_files = (
            definitions,
            cameras,
            procedures,
            files,
        )
        for gone in [t for t in m.tags if t not in names]:
            del m.tags[gone]

    # -- reads, from the copy ------------------------------------------------------------

    def touch(self, session: Session) -> None:
        self._fire("touch")
        if self.mirror.session:
            self.mirror.session_at = time.monotonic()

    def permissions(self, session: Session) -> frozenset[str]:
        return self.mirror.permissions

    def seconds_to_logout(self, session: Session) -> float:
        return self.mirror.seconds_left()

    def session_status(self, session: Session) -> SessionStatus:
        if self.mirror.ended is not None:
            raise SessionEnded("Your session has ended. Log in again.")
        s = self.mirror.session
        return SessionStatus(self.mirror.seconds_left(), bool(s.get("warning")), str(s["ends_by"]))

    def read_tags(self, session: Session, names: Sequence[str] = ()) -> list[TagReading]:
        tags = self.mirror.tags
        wanted = names or sorted(tags)
        missing = [n for n in wanted if n not in tags]
        if missing:
            raise HmiError(f"There is no tag {missing[0]!r} in this plant.", "Unknown tag")
        return [tags[n] for n in wanted]

    def tag_definitions(self, session: Session) -> list[TagInfo]:
        return list(self.mirror.definitions)

    def cameras(self, session: Session) -> list[str]:
        return list(self.mirror.cameras)

    def camera_settings(self, session: Session, camera: str) -> list[CameraSettingView]:
        if camera not in self.mirror.cameras:
            raise HmiError(f"There is no camera {camera!r} in this plant.", "Unknown camera")
        return list(self.mirror.cameras[camera])

    def capture_image(self, session: Session, sha256: str) -> bytes:
        image = self.mirror.images.get(sha256)
        if image is None:
            raise HmiError("That image was not taken at this terminal.", "No image")
        return image

    def signing_needs_user_id(self, session: Session) -> bool:
        needs = self.mirror.session.get("needs_user_id")
        return True if needs is None else bool(needs)

    def pending_approvals(self, session: Session) -> list[PendingApproval]:
        return list(self.mirror.sections.get("approvals", []))

    def what_may_i_do(self, session: Session, run_id: str | None = None) -> list[Choice]:
        if run_id is None:
            return list(self.mirror.sections.get("choices", []))
        return list(self._view(session, run_id).choices)

    @property
    def links(self) -> dict[str, str]:
        return dict(self.mirror.links)

    def _runs(self, session: Session, *, include_finished: bool = False) -> list[RunView]:
        runs: list[RunView] = self.mirror.sections.get("runs", [])
        return [r for r in runs if include_finished or r.state in OPEN_STATES]

    def _view(self, session: Session, run_id: str) -> RunView:
        for run in self.mirror.sections.get("runs", []):
            if run.run_id == run_id:
                return run  # type: ignore[no-any-return]
        raise HmiError(f"There is no run {run_id}.", "Unknown run")

    def _diff(self, session: Session, file: str, new_text: str) -> ConfigDiff:
        approved = {f.name: f.text for f in self.mirror.config_files}
        return diff_text(file, approved.get(file, ""), new_text)

    def _cancel(self, session: Session) -> bool:
        self._fire("records.cancel")
        return True

    # -- the link ----------------------------------------------------------------------

    async def keep_linked(self) -> None:
        """Dial again after every drop, with backoff, for as long as the terminal runs.

        The runtime ended the session when the link dropped (on the record), so
        the terminal goes back to its login; what it showed is dropped with it.
        """
        while self.dial is not None:
            await self.client.closed.wait()
            reason = self.client.refusal or "The connection to the runtime is lost."
            self.mirror = Mirror()
            self.mirror.ended = "link_lost"
            if self.on_link_lost is not None:
                self.on_link_lost(reason)
            delay = RECONNECT_FIRST_S
            while True:
                await asyncio.sleep(delay)  # backoff between attempts, not a synchronisation
                try:
                    client, hello = await self.dial()
                except (TimeoutError, OSError, HmiError):
                    delay = min(delay * 2, RECONNECT_MAX_S)
                    continue
                break
            self.client = client
            client.listen(self._event)
            self.plant = str(hello.get("plant", self.plant))
            if self.on_link_back is not None:
                self.on_link_back()

    # -- pushed events ---------------------------------------------------------------

    def _fire(self, method: str) -> None:
        async def send() -> None:
            with contextlib.suppress(HmiError):
                await self.client.request(method, {})

        task = asyncio.get_running_loop().create_task(send())
        _background.add(task)
        task.add_done_callback(_background.discard)

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "state":
            links = self.mirror.links
            warned = bool(self.mirror.session.get("warning"))
            self._apply_sections(params)
            if self.on_links is not None and self.mirror.links != links:
                self.on_links(self.mirror.links)
            warning = bool(self.mirror.session.get("warning"))
            if warning and not warned and self.on_session_warning is not None:
                self.on_session_warning()
        elif method == "tags":
            self.mirror.apply_tags(params.get("readings", []))
        elif method == "notice":
            notice = decode(NotificationRow, params, "notice")
            if self.on_notice is not None:
                self.on_notice(notice)
        elif method == "session_ended":
            self.mirror.ended = str(params.get("reason", "ended"))
            if self.on_session_ended is not None:
                self.on_session_ended(self.mirror.ended)


_background: set[asyncio.Task[None]] = set()
