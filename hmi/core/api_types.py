"""What the Terminal API takes and gives: plain frozen dataclasses, easy to serialise.

Kept apart from the API's behaviour so a remote terminal can share them
without the services behind them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hmi.core.approvals import PendingCommand
from hmi.core.commands import Credentials
from hmi.core.esign import SignatureRequest
from hmi.core.step_rules import Choice
from hmi.core.tags import TagScalar


@dataclass(frozen=True)
class TagReading:
    tag: str
    value: TagScalar | None
    quality: str
    units: str
    time: datetime
    reason: str = ""


@dataclass(frozen=True)
class SetpointRequest:
    """Write ``value`` to ``tag``, signed; ``witness`` for a second signer at this terminal."""

    tag: str
    value: TagScalar
    reason: str
    signature: Credentials
    witness: Credentials | None = None
    kind: str = "write_setpoint"
    run_id: str | None = None
    step: str | None = None
    shown: str | None = None
    """Digest of the ``SigningPreview`` the signer saw: if what would be signed now differs
    (the value moved while the dialog was open), the command is refused, not signed."""


@dataclass(frozen=True)
class CommandOutcome:
    outcome: str
    """``done`` or ``pending`` (waiting for approval)."""
    tag: str
    old_value: TagScalar | None
    new_value: TagScalar
    read_back: TagScalar | None
    signatures: tuple[str, ...]
    """Manifestations: printed name, date and time, meaning (11.50)."""
    approval_id: str | None = None


@dataclass(frozen=True)
class PendingApproval:
    approval_id: str
    requester_id: str
    requester_name: str
    terminal_id: str
    action: str
    tag: str
    old_value: TagScalar | None
    new_value: TagScalar
    units: str
    reason: str
    requested_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, item: PendingCommand) -> PendingApproval:
        return cls(
            item.approval_id,
            item.requester_id,
            item.requester_name,
            item.origin.terminal_id,
            item.prepared.command.kind,
            item.tag,
            item.old_value,
            item.new_value,
            item.units,
            item.reason,
            item.requested_at,
            item.expires_at,
        )


@dataclass(frozen=True)
class Decision:
    approval_id: str
    approve: bool
    user_id: str
    password: str
    reason: str


@dataclass(frozen=True)
class SigningPreview:
    """Exactly what a signature dialog must show, and so exactly what will be signed."""

    request: SignatureRequest
    esign: str
    """``none``, ``single`` or ``double`` (a second signer: a witness here, or the queue)."""
    needs_user_id: bool
    """True when the signer must give user ID as well as password (11.200(a)(1))."""
    digest: str
    """Pass back as ``SetpointRequest.shown``."""


@dataclass(frozen=True)
class AlarmView:
    alarm_id: str
    tag: str
    kind: str
    priority: int
    priority_label: str
    message: str
    state: str
    active: bool
    value: str | None
    limit: float | None
    activated_at: datetime | None
    shelved_until: datetime | None
    hidden_by: str | None
    """Who shelved it or took it out of service, with their reason."""


@dataclass(frozen=True)
class AlarmBanner:
    unacknowledged: int
    top: AlarmView | None
    """The newest of the highest-priority unacknowledged alarms."""


@dataclass(frozen=True)
class CaptureOutcome:
    camera: str
    sha256: str
    size: int
    format: str
    width: int
    height: int
    capture_seq: int
    path: str
    settings: dict[str, object]
    signatures: tuple[str, ...]


@dataclass(frozen=True)
class CameraSettingView:
    """One setting a capture may give, from the camera's configuration."""

    name: str
    type: str
    default: bool | int | float | str | None
    low: float | None
    high: float | None
    units: str
    description: str


@dataclass(frozen=True)
class ProcedureInfo:
    procedure_id: str
    title: str
    version: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class FieldView:
    name: str
    label: str
    type: str
    units: str
    choices: tuple[str, ...]
    minimum: float | None
    maximum: float | None
    pattern: str | None
    value: str | None


@dataclass(frozen=True)
class StepView:
    number: int
    step_id: str
    title: str
    status: str
    """``done``, ``current`` or ``pending``."""
    time_limit_s: float | None
    commands: tuple[str, ...]
    signatures: tuple[str, ...]
    """``meaning (role)``, with ``: <manifestation>`` once given (current step only)."""
    conditions: tuple[tuple[str, bool, str], ...]
    """(condition, met now, why not): evaluated for the current step only."""
    fields: tuple[FieldView, ...]


@dataclass(frozen=True)
class RunView:
    run_id: str
    procedure_id: str
    title: str
    version: str
    state: str
    step_number: int
    step_title: str
    created_at: datetime
    step_started_at: datetime | None
    overdue: bool
    steps: tuple[StepView, ...]
    choices: tuple[Choice, ...]
    """What the asking session may do now, and why not the rest."""


@dataclass(frozen=True)
class TagInfo:
    """What a screen needs to know about a tag from configuration (never its device address)."""

    name: str
    description: str
    equipment: str
    area: str
    device: str
    dtype: str
    units: str
    writable: bool
    low: float | None
    high: float | None


@dataclass(frozen=True)
class SessionView:
    """Someone logged in now, as the Admin screen lists them."""

    session_id: str
    user_id: str
    full_name: str
    terminal_id: str
    source: str
    started_at: datetime
    last_activity: datetime


@dataclass(frozen=True)
class UserView:
    """An account as the Admin screen shows it: never a password or its hash."""

    user_id: str
    full_name: str
    roles: tuple[str, ...]
    state: str
    """``active``, ``locked`` or ``deactivated``."""
    must_change_password: bool
    failed_attempts: int
    password_changed_at: datetime | None
    created_at: datetime
    created_by: str
    deactivated_at: datetime | None


@dataclass(frozen=True)
class ConfigFile:
    name: str
    """Relative to the configuration directory: ``tags.toml``, ``procedures/x.toml``."""
    text: str
    """As the runtime read it at start (empty when the file is absent: its defaults apply)."""
    exists: bool


@dataclass(frozen=True)
class ConfigProblem:
    """One problem, where a screen can show it: the file and the key path inside it."""

    file: str
    key: str
    """``tag[3] (BR101.TEMP).scan_class``; ``(top level)`` or ``(TOML syntax)`` if no key."""
    message: str


@dataclass(frozen=True)
class ConfigCheck:
    file: str
    ok: bool
    problems: tuple[ConfigProblem, ...]


@dataclass(frozen=True)
class ConfigDiff:
    file: str
    diff: str
    """Unified diff, approved version (``a/``) against the proposed text (``b/``)."""
    sha256: str
    """Of the diff's UTF-8 bytes: what the submitter signs."""
    size: int
    """Bytes of the diff."""


@dataclass(frozen=True)
class ConfigRequest:
    """A change to a configuration file, recorded as a proposed configuration version."""

    file: str
    diff_sha256: str
    text_sha256: str
    text_kept: bool
    """Whether the proposed text is kept in the records (always, in the version's row)."""
    signatures: tuple[str, ...]
    version: int = 0
    state: str = "proposed"
    """``proposed`` (awaiting approval) or ``approved`` (the policy needs no one else)."""
    needs: tuple[str, ...] = ()
    """Roles whose approval is still needed."""
    effect: str = ""
    """Approved at once: what took effect in the running system and what waits for a restart."""


@dataclass(frozen=True)
class ConfigVersionView:
    """A configuration version as the engineer and QA screens list it."""

    version: int
    state: str
    """``proposed``, ``stale``, ``approved`` (running), ``superseded`` or ``rejected``."""
    author: str
    reason: str
    created: datetime | None
    changed: tuple[str, ...]
    needs: tuple[str, ...]
    """Roles whose approval is still missing (for a proposed version)."""
    approvals: tuple[str, ...]
    """``role: name (user ID)`` per approval given."""
    diff: str
    base_version: int | None = None
    restores_version: int | None = None
    signed: tuple[str, ...] = ()
    """Manifestations of a signature just given (for the outcome message)."""
    effect: str = ""
    """For a version just approved: what took effect now, or that it does at restart."""
