"""Image captures as commands: checked, signed, recorded like a setpoint write (SUP-8, REC-4).

A capture changes nothing at the plant, but its image becomes evidence, so
it passes the same checks as any command: permission (``capture_image``),
terminal (action and the camera's area), the sequence gate of a running
procedure (``capture:<camera>`` in a step's ``commands``), the settings the
camera's configuration allows, and the signatures its ``esign`` asks for.
The attempt is recorded before the camera is asked; the image is stored
and its ``captures`` row committed in one transaction with the ``done``
audit row, so a record never names an image that is not there.

A capture whose camera asks for two signatures needs the second signer at
the terminal (a witness): unlike a setpoint, a picture cannot wait in the
approval queue and still show what the supervisor approved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from drivers.base import DriverError, Value
from hmi.core.audit import canonical_json
from hmi.core.camera_config import CameraConfig
from hmi.core.commands import SUPERVISOR_PERMISSION, Actor, Command, CommandService, Credentials
from hmi.core.errors import HmiError, SignatureError
from hmi.core.esign import Signature, SignatureRequest
from hmi.core.identity import Session
from hmi.core.records import AuditEntry, Origin, Record, SignatureEntry
from hmi.core.terminals import check_terminal

PERMISSION = "capture_image"


class CapturedImage(Protocol):
    """What a camera returns (``drivers.camera.CaptureResult``)."""

    @property
    def image(self) -> bytes: ...
    @property
    def format(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def settings(self) -> dict[str, object]: ...
    @property
    def camera_time(self) -> datetime | None: ...


class CommandCamera(Protocol):
    """A camera as configured (``hmi.plant.ConfiguredCamera``)."""

    @property
    def name(self) -> str: ...
    @property
    def config(self) -> CameraConfig: ...

    async def capture(self, settings: Mapping[str, Value] | None = None) -> CapturedImage: ...


@dataclass(frozen=True)
class ArchivedImage:
    """A stored capture: its place in the ``captures`` chain and its file."""

    seq: int
    sha256: str
    size: int
    format: str
    width: int
    height: int
    path: str


class CaptureArchive(Protocol):
    """Stores the image and commits its row together with ``records`` (``hmi.records.images``)."""

    async def archive(
        self,
        image: CapturedImage,
        camera: str,
        *,
        actor_id: str,
        actor_name: str,
        terminal_id: str,
        signature_ids: Sequence[str],
        run_id: str | None,
        step: str | None,
        records: Sequence[Record],
    ) -> ArchivedImage: ...


@dataclass(frozen=True)
class CaptureRequest:
    camera: str
    reason: str
    signature: Credentials | None
    settings: Mapping[str, Value] | None = None
    witness: Credentials | None = None
    run_id: str | None = None
    step: str | None = None


@dataclass(frozen=True)
class CaptureDone:
    camera: str
    image: ArchivedImage
    settings: dict[str, object]
    signatures: tuple[Signature, ...]


class CaptureCommands:
    """``capture_image`` through the command service's checks and records."""

    def __init__(
        self,
        commands: CommandService,
        cameras: Mapping[str, CommandCamera],
        archive: CaptureArchive,
    ) -> None:
        self.commands = commands
        self.cameras = cameras
        self.archive = archive

    def request(self, command: Command, meaning: str) -> SignatureRequest:
        """What the signer sees and signs: camera, settings, reason, run and step."""
        return SignatureRequest(
            action=PERMISSION,
            target=command.tag,
            meaning=meaning,
            reason=command.reason,
            new_value=str(command.value),
            run_id=command.run_id,
            step=command.step,
        )

    async def check(
        self, session: Session, origin: Origin, request: CaptureRequest
    ) -> tuple[Command, dict[str, Value]]:
        """Permission, camera, terminal, gate, settings: the command as it will be signed."""
        svc = self.commands
        current = svc.identity.require_permission(session, PERMISSION)
        if svc.blocked is not None:
            raise HmiError(svc.blocked, "Commands blocked")
        camera = self.cameras.get(request.camera)
        if camera is None:
            known = ", ".join(sorted(self.cameras)) or "none"
            raise HmiError(f"There is no camera {request.camera}; cameras: {known}.")
        config = camera.config
        check_terminal(svc.config.terminals, current.origin, origin, PERMISSION, config.area)
        step = request.step
        if request.run_id is not None:
            step = await svc.gate.gate(current, request.run_id, "capture", camera.name) or step
        settings = dict(request.settings or {})
        problems = config.setting_problems(settings)
        if problems:
            raise HmiError(
                f"{camera.name} cannot capture with these settings: {'; '.join(problems)}."
            )
        command = Command(
            PERMISSION, camera.name, canonical_json(settings), request.reason, request.run_id, step
        )
        return command, settings

    async def _checked(
        self, session: Session, origin: Origin, request: CaptureRequest
    ) -> tuple[Command, dict[str, Value]]:
        """``check``, with a refusal recorded before it is raised."""
        try:
            return await self.check(session, origin, request)
        except HmiError as exc:
            actor = Actor(session.user_id, session.user.full_name, origin)
            unchecked = Command(
                PERMISSION,
                request.camera,
                canonical_json(dict(request.settings or {})),
                request.reason,
                request.run_id,
                request.step,
            )
            raise await self.commands.refuse(actor, unchecked, exc) from None

    async def preview(self, session: Session, origin: Origin, request: CaptureRequest) -> Command:
        """The command as the signature dialog will show it (refusals recorded)."""
        command, _ = await self._checked(session, origin, request)
        return command

    async def capture(
        self, session: Session, origin: Origin, request: CaptureRequest
    ) -> CaptureDone:
        svc = self.commands
        actor = Actor(session.user_id, session.user.full_name, origin)
        command, settings = await self._checked(session, origin, request)
        esign = self.cameras[command.tag].config.esign
        signed: list[tuple[Signature, SignatureEntry]] = []
        try:
            if esign != "none":
                if request.signature is None:
                    raise SignatureError("A capture from this camera needs your signature.")
                signed.append(
                    await svc.esign.sign(
                        session,
                        self.request(command, "performed"),
                        request.signature.password,
                        permission=PERMISSION,
                        user_id=request.signature.user_id,
                    )
                )
            if esign == "double":
                w = request.witness
                if w is None or w.user_id is None:
                    raise SignatureError(
                        f"A capture from {command.tag} needs a second signer (a supervisor) at "
                        "this terminal: user ID and password."
                    )
                signed.append(
                    await svc.esign.witness(
                        self.request(command, "verified"),
                        w.user_id,
                        w.password,
                        origin,
                        permission=SUPERVISOR_PERMISSION,
                        not_user=session.user_id,
                    )
                )
        except HmiError as exc:
            ids = tuple(s.signature_id for s, _ in signed)
            raise await svc.refuse(actor, command, exc, signature_ids=ids) from None
        return await self._perform(actor, command, settings, signed)

    def _entry(self, actor: Actor, command: Command, outcome: str, **kw: object) -> AuditEntry:
        return AuditEntry(
            PERMISSION,
            outcome,
            actor.user_id,
            actor.name,
            actor.origin,
            target=command.tag,
            new_value=str(command.value),
            reason=command.reason or None,
            run_id=command.run_id,
            step=command.step,
            **kw,  # type: ignore[arg-type]
        )

    async def _perform(
        self,
        actor: Actor,
        command: Command,
        settings: dict[str, Value],
        signed: Sequence[tuple[Signature, SignatureEntry]],
    ) -> CaptureDone:
        svc = self.commands
        ids = tuple(s.signature_id for s, _ in signed)
        await svc.recorder.commit(
            [*(e for _, e in signed), self._entry(actor, command, "attempt", signature_ids=ids)]
        )
        try:
            async with svc.driver_gate.writing():  # the camera uses a driver's connection
                camera = self.cameras.get(command.tag)
                if camera is None:
                    raise DriverError(f"camera {command.tag} is no longer configured")
                result = await camera.capture(settings or None)
        except DriverError as exc:
            why = (str(exc) or type(exc).__name__)[:2000]
            await svc.recorder.commit(
                [self._entry(actor, command, "failed", signature_ids=ids, detail=why)]
            )
            raise HmiError(
                f"No image from {command.tag}: {why}. The attempt is recorded.", "Capture failed"
            ) from None
        detail = f"{result.width}x{result.height} {result.format}, {len(result.image)} bytes"
        done = self._entry(actor, command, "done", signature_ids=ids, detail=detail)
        assert actor.user_id is not None and actor.name is not None
        try:
            stored = await self.archive.archive(
                result,
                command.tag,
                actor_id=actor.user_id,
                actor_name=actor.name,
                terminal_id=actor.origin.terminal_id,
                signature_ids=ids,
                run_id=command.run_id,
                step=command.step,
                records=[done],
            )
        except HmiError as exc:
            await svc.recorder.commit(
                [self._entry(actor, command, "failed", signature_ids=ids, detail=exc.message)]
            )
            raise
        return CaptureDone(command.tag, stored, dict(result.settings), tuple(s for s, _ in signed))
