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
