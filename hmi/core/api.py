"""The Terminal API: everything a terminal may ask of the runtime, as plain data.

The TUI and the remote protocol call only this, so what a screen can do is
exactly what is checked and recorded here. Requests and results are plain
dataclasses (``hmi.core.api_types``, easy to serialise); refusals are
``HmiError`` with text for the person at the terminal. Every request carries
the terminal's origin, so the command service can check that the session is
used where it began. Alarms, procedures, records, accounts and configuration files
have their own desks (``api.alarms``, ``api.procedures``, ``api.records``,
``api.admin``, ``api.config``, ``api.reports``), built on the same checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hmi.core.api_admin import AdminDesk
from hmi.core.api_alarms import AlarmDesk
from hmi.core.api_config import ConfigDesk
from hmi.core.api_procedures import ProcedureDesk
from hmi.core.api_records import RecordsDesk
from hmi.core.api_reports import ReportDesk
from hmi.core.api_types import (
    AlarmBanner,
    AlarmView,
    CameraSettingView,
    CaptureOutcome,
    CommandOutcome,
    ConfigCheck,
    ConfigDiff,
    ConfigFile,
    ConfigProblem,
    ConfigRequest,
    Decision,
    FieldView,
    PendingApproval,
    ProcedureInfo,
    RunView,
    SetpointRequest,
    SigningPreview,
    StepView,
    TagInfo,
    TagReading,
    UserView,
)
from hmi.core.approvals import ApprovalQueue
from hmi.core.captures import CaptureCommands, CaptureRequest
from hmi.core.commands import Command, CommandService, Credentials
from hmi.core.config import ACTIONS
from hmi.core.errors import HmiError
from hmi.core.esign import SignatureRequest, SigningMode
from hmi.core.identity import IdentityService, Session, SessionStatus
from hmi.core.records import Origin
from hmi.core.step_rules import Choice
from hmi.core.tag_table import TagTable
from hmi.core.tags import TagScalar

__all__ = [
    "AlarmBanner",
    "AlarmView",
    "CaptureOutcome",
    "CaptureRequest",
    "CommandOutcome",
    "ConfigCheck",
    "ConfigDiff",
    "ConfigFile",
    "ConfigProblem",
    "ConfigRequest",
    "Credentials",
    "Decision",
    "FieldView",
    "PendingApproval",
    "ProcedureInfo",
    "RunView",
    "SetpointRequest",
    "SigningPreview",
    "StepView",
    "TagInfo",
    "TagReading",
    "TerminalAPI",
    "UserView",
]


@dataclass
class TerminalAPI:
    identity: IdentityService
    table: TagTable
    commands: CommandService
    approvals: ApprovalQueue
    alarms: AlarmDesk | None = None
    procedures: ProcedureDesk | None = None
    captures: CaptureCommands | None = None
    records: RecordsDesk | None = None
    _choices: tuple[str, ...] = field(
        default=("write_setpoint", "operate_equipment", "capture_image")
    )
    _images: dict[str, str] = field(default_factory=dict)
    """sha256 → file of the captures taken through this API (for ``capture_image``)."""
    admin: AdminDesk | None = None
    config: ConfigDesk | None = None
    reports: ReportDesk | None = None

    # -- sessions ---------------------------------------------------------------------

    async def login(self, user_id: str, password: str, origin: Origin) -> Session:
        return await self.identity.login(user_id, password, origin)

    async def logout(self, session: Session) -> None:
        await self.identity.logout(session)

    def touch(self, session: Session) -> None:
        """Keyboard or mouse activity: keeps the session from timing out (SUP-10)."""
        self.identity.touch(session)

    def permissions(self, session: Session) -> frozenset[str]:
        """What this session's roles may do: a screen offers only these (each call checks)."""
        current = self.identity.require_session(session, allow_password_change=True)
        policy = self.identity.policy
        return frozenset(a for a in ACTIONS if policy.permitted(current.user.roles, a))

    async def change_password(self, session: Session, old: str, new: str) -> None:
        await self.identity.change_password(session, old, new)

    def seconds_to_logout(self, session: Session) -> float:
        """Seconds until the session ends by itself (inactivity or maximum length); 0 if ended.

        A terminal shows this as a countdown, so nobody is logged out by surprise.
        """
        current = self.identity.sessions.get(session.session_id)
        if current is None or not current.active:
            return 0.0
        return max(0.0, self.identity.session_status(current).seconds_left)

    # -- reading ----------------------------------------------------------------------

    def read_tags(self, session: Session, names: Sequence[str] = ()) -> list[TagReading]:
        """A snapshot of ``names`` (all tags if empty); needs a live session."""
        self.identity.require_session(session)
        defs = self.table.definitions
        wanted = names or sorted(defs)
        out = []
        for name in wanted:
            try:
                v = self.table.get(name)
            except KeyError:
                raise HmiError(f"There is no tag {name!r} in this plant.", "Unknown tag") from None
            units = defs[name].units if name in defs else ""
            out.append(TagReading(name, v.value, v.quality.value, units, v.server_time, v.reason))
        return out

    def tag_definitions(self, session: Session) -> list[TagInfo]:
        """Every tag as configured, by name: what screens group into equipment panels."""
        self.identity.require_session(session)
        return [
            TagInfo(
                name=d.name,
                description=d.description,
                equipment=d.equipment,
                area=d.area,
                device=d.device,
                dtype=d.dtype,
                units=d.units,
                writable=d.writable,
                low=d.low,
                high=d.high,
            )
            for d in sorted(self.table.definitions.values(), key=lambda d: d.name)
        ]

    # -- commands ---------------------------------------------------------------------

    def _preview(self, session: Session, request: SignatureRequest, esign: str) -> SigningPreview:
        full = self.commands.esign.mode_for(session) is SigningMode.FULL
        return SigningPreview(request, esign, full, request.digest())

    async def preview_write(
        self,
        session: Session,
        origin: Origin,
        tag: str,
        value: TagScalar,
        reason: str,
        *,
        kind: str = "write_setpoint",
        run_id: str | None = None,
    ) -> SigningPreview:
        """What the signature dialog shows for this write; refused (and recorded) if not allowed."""
        command = Command(kind, tag, value, reason, run_id)
        prepared = await self.commands.preview(session, origin, command)
        return self._preview(session, prepared.request("performed"), prepared.esign)

    async def request_write(
        self, session: Session, origin: Origin, request: SetpointRequest
    ) -> CommandOutcome:
        command = Command(
            request.kind, request.tag, request.value, request.reason, request.run_id, request.step
        )
        result = await self.commands.execute(
            session, origin, command, request.signature, request.witness, request.shown
        )
        return CommandOutcome(
            result.outcome,
            result.tag,
            result.old_value,
            result.new_value,
            result.read_back,
            tuple(s.manifestation() for s in result.signatures),
            result.approval_id,
        )

    def _captures(self) -> CaptureCommands:
        if self.captures is None:
            raise HmiError("This plant has no cameras.")
        return self.captures

    async def preview_capture(
        self, session: Session, origin: Origin, request: CaptureRequest
    ) -> SigningPreview:
        """What the signature dialog shows for this capture; refused (and recorded) if not."""
        captures = self._captures()
        command = await captures.preview(session, origin, request)
        esign = captures.cameras[command.tag].config.esign
        return self._preview(session, captures.request(command, "performed"), esign)

    async def capture(
        self, session: Session, origin: Origin, request: CaptureRequest
    ) -> CaptureOutcome:
        """Take a picture under signature; returns once the image and its record are stored."""
        done = await self._captures().capture(session, origin, request)
        i = done.image
        self._images[i.sha256] = str(i.path)
        return CaptureOutcome(
            done.camera,
            i.sha256,
            i.size,
            i.format,
            i.width,
            i.height,
            i.seq,
            i.path,
            done.settings,
            tuple(s.manifestation() for s in done.signatures),
        )

    def cameras(self, session: Session) -> list[str]:
        self.identity.require_session(session)
        return sorted(self.captures.cameras) if self.captures is not None else []

    def camera_settings(self, session: Session, camera: str) -> list[CameraSettingView]:
        """The settings a capture from ``camera`` may give (none for a triggered camera)."""
        self.identity.require_session(session)
        found = self._captures().cameras.get(camera)
        if found is None:
            raise HmiError(f"There is no camera {camera}.")
        return [
            CameraSettingView(s.name, s.type, s.default, s.low, s.high, s.units, s.description)
            for s in getattr(found.config, "setting", ())
        ]

    def capture_image(self, session: Session, sha256: str) -> bytes:
        """The bytes of a capture taken through this terminal's API, for a preview (read-only)."""
        self.identity.require_session(session)
        path = self._images.get(sha256)
        if path is None:
            raise HmiError(f"No capture {sha256[:12]}… was taken at this terminal.")
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise HmiError(f"The image {sha256[:12]}… cannot be read: {exc.strerror}.") from None

    def signing_needs_user_id(self, session: Session) -> bool:
        """True when a signature now needs user ID as well as password (11.200(a)(1))."""
        current = self.identity.require_session(session)
        return self.commands.esign.mode_for(current) is SigningMode.FULL

    def pending_approvals(self, session: Session) -> list[PendingApproval]:
        self.identity.require_session(session)
        return [PendingApproval.of(p) for p in self.approvals.list_pending()]

    async def decide(
        self, session: Session, origin: Origin, decision: Decision
    ) -> CommandOutcome | None:
        """Approve (the command is checked again and written) or reject a pending request."""
        q = self.approvals
        d = decision
        if not d.approve:
            await q.reject(session, origin, d.approval_id, d.user_id, d.password, d.reason)
            return None
        result = await q.approve(session, origin, d.approval_id, d.user_id, d.password, d.reason)
        return CommandOutcome(
            result.outcome,
            result.tag,
            result.old_value,
            result.new_value,
            result.read_back,
            (),
            d.approval_id,
        )

    def what_may_i_do(self, session: Session, run_id: str | None = None) -> list[Choice]:
        """Commands open to this session; within a run, the sequencer's answer."""
        current = self.identity.require_session(session)
        if run_id is not None and self.procedures is not None:
            return self.procedures.sequencer.what_now(run_id, current)
        policy = self.identity.policy
        out = []
        for action in (*self._choices, "approve_command"):
            if policy.permitted(current.user.roles, action):
                out.append(Choice(action, None, True))
            else:
                out.append(Choice(action, None, False, "your role does not include it"))
        return out

    # -- session countdown (SUP-10) ---------------------------------------------------

    def session_status(self, session: Session) -> SessionStatus:
        """Seconds until automatic logout and whether to warn, for a countdown on screen.

        The runtime also announces the warning once (``RuntimeEvents.on_session_warning``);
        this lets a screen show the time left. An ended session raises ``SessionEnded``.
        """
        current = self.identity.require_session(session, allow_password_change=True)
        return self.identity.session_status(current)
