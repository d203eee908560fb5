"""The command service: the one path from a person to a device (SUP-8, SUP-9, REC-4, REC-5).

Every command passes the same checks in the same order, because the order
is what makes the record trustworthy: who may (role permission), from where
(terminal: area, action, source), when (the sequence gate of a running
procedure), what (type, limits, rate of change against the current value),
signed by whom (the tag's or the command type's signature policy), approved
by whom (a second signer for critical commands), then the write, the read
back and the outcome.

Each refusal is recorded in the audit trail with its reason before the
person sees it. Nothing reaches a device unless an ``attempt`` audit row,
with the signatures, is committed first; if that cannot be recorded the
write is not sent. The outcome (``done`` or ``failed`` with the value read
back) is a second row, so a crash between the two leaves the attempt visible.

New command kinds (captures, alarm and procedure commands) plug in as a
``CommandKind`` with their own ``perform``: the checks before and the records
around it stay the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from drivers.base import Driver, DriverError
from hmi.core.attribution import WriteAttribution
from hmi.core.clock import Clock
from hmi.core.config import PlantConfig
from hmi.core.driver_gate import DriverGate
from hmi.core.errors import HmiError, RecordError, SignatureError
from hmi.core.esign import ESignService, Signature, SignatureRequest
from hmi.core.identity import IdentityService, Session
from hmi.core.plant_config import TagConfig
from hmi.core.ports import Recorder
from hmi.core.records import AuditEntry, Origin, Record, SignatureEntry
from hmi.core.setpoint_rules import check_rate, check_value
from hmi.core.tag_table import TagDef, TagTable
from hmi.core.tags import TagScalar
from hmi.core.terminals import check_terminal

SUPERVISOR_PERMISSION = "approve_command"
"""What a second signer (witness or approver) must hold."""

WRITE_KINDS = ("write_setpoint", "operate_equipment")

PROCEDURE_KINDS = {"write_setpoint": "write_setpoint", "operate_equipment": "operate",
                   "capture_image": "capture"}  # fmt: skip
"""Command kind (the permission) → its name in a procedure step's ``commands`` list."""


class SequenceGate(Protocol):
    """The sequencer's say on a command given within a procedure run.

    Raises ``HmiError`` naming the step where the command is allowed
    (``hmi.core.sequencer.Sequencer.gate``); otherwise returns the run's
    current step as the records name it, so the audit row says the step the
    run was really in, not the one a terminal claimed. A command outside any
    run is not asked about: no procedure constrains it.
    """

    async def gate(
        self, session: Session | None, run_id: str, kind: str, target: str
    ) -> str | None: ...


class OpenGate:
    """No sequencer: nothing constrains commands beyond the other checks."""

    async def gate(
        self, session: Session | None, run_id: str, kind: str, target: str
    ) -> str | None:
        return None


@dataclass(frozen=True)
class Credentials:
    """A signer's components (11.200): user ID may be omitted when the session allows."""

    password: str
    user_id: str | None = None


@dataclass(frozen=True)
class Command:
    """What a person asks for. ``kind`` is the permission it needs."""

    kind: str
    tag: str
    value: TagScalar
    reason: str
    run_id: str | None = None
    step: str | None = None


@dataclass(frozen=True)
class Prepared:
    """A command that passed every check before signatures, with what it was checked against."""

    command: Command
    definition: TagDef
    old_value: TagScalar | None
    value: TagScalar
    esign: str

    def request(self, meaning: str) -> SignatureRequest:
        c = self.command
        return SignatureRequest(
            action=c.kind,
            target=c.tag,
            meaning=meaning,
            reason=c.reason,
            old_value=_text(self.old_value),
            new_value=_text(self.value),
            units=self.definition.units or None,
            run_id=c.run_id,
            step=c.step,
        )


@dataclass(frozen=True)
class CommandResult:
    outcome: str
    """``done``, or ``pending`` when it waits in the approval queue."""
    tag: str
    old_value: TagScalar | None
    new_value: TagScalar
    read_back: TagScalar | None = None
    signatures: tuple[Signature, ...] = ()
    approval_id: str | None = None


@dataclass
class Actor:
    """Who and where, as every audit row names them."""

    user_id: str | None
    name: str | None
    origin: Origin
    extra_signatures: list[str] = field(default_factory=list)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


class CommandService:
    def __init__(
        self,
        config: PlantConfig,
        identity: IdentityService,
        esign: ESignService,
        recorder: Recorder,
        table: TagTable,
        drivers: Mapping[str, Driver],
        attribution: WriteAttribution,
        clock: Clock,
        gate: SequenceGate | None = None,
    ) -> None:
        self.config = config
        self.identity = identity
        self.esign = esign
        self.recorder = recorder
        self.table = table
        self.drivers = drivers
        self.attribution = attribution
        self.clock = clock
        self.gate: SequenceGate = gate or OpenGate()
        self.approvals: ApprovalSink | None = None
        self.blocked: str | None = None
        """Why every command is refused (the configuration is not the approved one)."""
        self._tag_esign = {t.name: t.esign for t in config.tags}
        self._last_write: dict[str, float] = {}
        self._started = clock.monotonic()
        self.driver_gate = DriverGate()
        """Writes in flight finish before the drivers are rebuilt; new ones wait for it."""

    def retag(self, tags: Iterable[TagConfig]) -> None:
        """An approved version changed tag metadata in place: its signature rules apply
        to the next command."""
        self._tag_esign = {t.name: t.esign for t in tags}

    # -- records ------------------------------------------------------------------

    def _entry(
        self, actor: Actor, prepared: Prepared | Command, outcome: str, **kw: object
    ) -> AuditEntry:
        if isinstance(prepared, Prepared):
            c = prepared.command
            old, new = _text(prepared.old_value), _text(prepared.value)
            units = prepared.definition.units or None
        else:
            c = prepared
            current = self._current(c.tag)
            old, new, units = _text(current), _text(c.value), self._units(c.tag)
        entry = AuditEntry(
            c.kind,
            outcome,
            actor.user_id,
            actor.name,
            actor.origin,
            target=c.tag,
            old_value=old,
            new_value=new,
            units=units,
            reason=c.reason or None,
            run_id=c.run_id,
            step=c.step,
        )
        return replace(entry, **kw)  # type: ignore[arg-type]

    async def refuse(
        self, actor: Actor, command: Command | Prepared, error: HmiError, **kw: object
    ) -> HmiError:
        """Record ``error`` as a refusal of ``command``; returns it for the caller to raise."""
        detail = f"{error.title}: {error.message}"[:2000]
        try:
            await self.recorder.commit(
                [self._entry(actor, command, "refused", detail=detail, **kw)]
            )
        except Exception as exc:
            return RecordError(f"{error.message} (The refusal could not be recorded: {exc}.)")
        return error

    def _current(self, tag: str) -> TagScalar | None:
        try:
            return self.table.get(tag).value
        except KeyError:
            return None

    def _units(self, tag: str) -> str | None:
        try:
            return self.table.definition(tag).units or None
        except KeyError:
            return None

    # -- the checks ----------------------------------------------------------------

    def policy_for(self, kind: str, tag: str) -> str:
        own = self._tag_esign.get(tag)
        return own or self.config.commands.esign.get(kind, "single")

    async def check(self, session: Session, origin: Origin, command: Command) -> Prepared:
        """Authorise, terminal, gate, validate: raises ``HmiError`` (not yet recorded)."""
        current = self.identity.require_permission(session, command.kind)
        if self.blocked is not None:
            raise HmiError(self.blocked, "Commands blocked")
        if command.kind not in WRITE_KINDS:
            raise HmiError(f"'{command.kind}' is not a command this service performs.")
        try:
            d = self.table.definition(command.tag)
        except KeyError:
            raise HmiError(f"There is no tag {command.tag}.") from None
        check_terminal(self.config.terminals, current.origin, origin, command.kind, d.area)
        if command.run_id is not None:
            step = await self.gate.gate(
                current, command.run_id, PROCEDURE_KINDS[command.kind], command.tag
            )
            command = replace(command, step=step or command.step)
        value = self.validate(command.kind, d, command.value)
        return Prepared(
            command, d, self._current(d.name), value, self.policy_for(command.kind, d.name)
        )

    def validate(self, kind: str, d: TagDef, value: TagScalar) -> TagScalar:
        """The value as the device will get it, if the tag accepts it now."""
        checked = check_value(kind, d, value)
        if d.rate_of_change is not None and isinstance(checked, int | float):
            since = self._last_write.get(d.name, self._started)
            elapsed = max(self.clock.monotonic() - since, 1.0)
            check_rate(d, float(checked), self._current(d.name), elapsed)
        return checked

    # -- the command ---------------------------------------------------------------

    async def preview(self, session: Session, origin: Origin, command: Command) -> Prepared:
        """The checks of ``execute`` without acting: what the signature dialog will show.

        A refusal is recorded here as it would be on execution, so a screen
        that never gets as far as a signature still leaves its trace.
        """
        try:
            return await self.check(session, origin, command)
        except HmiError as exc:
            actor = Actor(session.user_id, session.user.full_name, origin)
            raise await self.refuse(actor, command, exc) from None

    async def execute(
        self,
        session: Session,
        origin: Origin,
        command: Command,
        signature: Credentials | None = None,
        witness: Credentials | None = None,
        shown: str | None = None,
    ) -> CommandResult:
        """Check, sign, (queue or) write, read back and record ``command``.

        ``shown`` is the digest of the signature request the signer was shown
        (``preview``); if what would be signed now differs, nothing is signed.
        """
        actor = Actor(session.user_id, session.user.full_name, origin)
        try:
            prepared = await self.check(session, origin, command)
            if shown is not None and prepared.request("performed").digest() != shown:
                raise HmiError(
                    f"{command.tag} changed while the signature dialog was open (it is now "
                    f"{prepared.old_value!r}). Nothing was signed; review the change and sign "
                    "again.",
                    "Changed before signing",
                )
        except HmiError as exc:
            raise await self.refuse(actor, command, exc) from None
        signed: list[tuple[Signature, SignatureEntry]] = []
        try:
            if prepared.esign != "none":
                if signature is None:
                    raise SignatureError("This command needs your electronic signature.")
                signed.append(
                    await self.esign.sign(
                        session,
                        prepared.request("performed"),
                        signature.password,
                        permission=command.kind,
                        user_id=signature.user_id,
                    )
                )
            if prepared.esign == "double" and witness is not None:
                if witness.user_id is None:
                    raise SignatureError("The witness gives user ID and password.")
                signed.append(
                    await self.esign.witness(
                        prepared.request("verified"),
                        witness.user_id,
                        witness.password,
                        origin,
                        permission=SUPERVISOR_PERMISSION,
                        not_user=session.user_id,
                    )
                )
        except HmiError as exc:
            ids = tuple(s.signature_id for s, _ in signed)
            raise await self.refuse(actor, prepared, exc, signature_ids=ids) from None
        if prepared.esign == "double" and witness is None:
            if self.approvals is None:
                raise await self.refuse(
                    actor, prepared, HmiError("A second signature is needed: ask a supervisor.")
                )
            return await self.approvals.submit(session, origin, prepared, signed)
        return await self.perform(actor, prepared, signed)

    async def perform(
        self,
        actor: Actor,
        prepared: Prepared,
        signed: Sequence[tuple[Signature, SignatureEntry]],
        records: Sequence[Record] = (),
    ) -> CommandResult:
        """Record the attempt, write, read back, record the outcome."""
        ids = tuple(s.signature_id for s, _ in signed) + tuple(actor.extra_signatures)
        d, value = prepared.definition, prepared.value
        attempt = self._entry(actor, prepared, "attempt", signature_ids=ids)
        await self.recorder.commit([*records, *(e for _, e in signed), attempt])
        self._last_write[d.name] = self.clock.monotonic()
        try:
            async with self.driver_gate.writing():
                driver = self.drivers.get(d.device)
                if driver is None:
                    raise DriverError(f"device {d.device} is not configured")
                if actor.user_id is not None:
                    self.attribution.expect(
                        d.name, value, actor.user_id, self.config.commands.readback_s
                    )
                sample = await driver.write(d.name, value)
        except DriverError as exc:
            why = str(exc) or type(exc).__name__
            await self.recorder.commit(
                [self._entry(actor, prepared, "failed", signature_ids=ids, detail=why[:2000])]
            )
            raise HmiError(
                f"{d.name} was not written: {why}. The attempt is recorded.", "Write failed"
            ) from None
        read_back = sample.value if not isinstance(sample.value, bytes) else None
        confirmed = sample.good and self.attribution.same(d.name, read_back, value)
        self.table.apply(d.device, [sample])
        detail = f"read back {read_back!r} ({sample.quality.value})"
        if not confirmed:
            await self.recorder.commit(
                [self._entry(actor, prepared, "failed", signature_ids=ids, detail=detail)]
            )
            raise HmiError(
                f"{d.name} reads back {read_back!r}, not {value!r}; the command is recorded as "
                "failed. Check the device.",
                "Write not confirmed",
            )
        await self.recorder.commit(
            [self._entry(actor, prepared, "done", signature_ids=ids, detail=detail)]
        )
        return CommandResult(
            "done",
            d.name,
            prepared.old_value,
            value,
            read_back,
            tuple(s for s, _ in signed),
        )


class ApprovalSink(Protocol):
    """Where a double-signature command waits for its second signer (``hmi.core.approvals``)."""

    async def submit(
        self,
        session: Session,
        origin: Origin,
        prepared: Prepared,
        signed: Sequence[tuple[Signature, SignatureEntry]],
    ) -> CommandResult: ...
