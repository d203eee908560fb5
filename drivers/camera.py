"""Cameras: a capture gives image bytes and what is known about how they were taken.

Two kinds of camera reach the plant network. One is an OPC UA server exposing
a method that returns the image as a ByteString (the simulated microscope's
``Camera.Capture``). The other is triggered by a Modbus coil and drops the
picture as a file into a folder this host can read; the new file is the only
proof that the trigger was obeyed, so the camera waits for it with a deadline.

The format, width and height of every image are read from the bytes with
Pillow rather than taken from the device, because they go into a regulated
record and a camera's own report may be wrong. Like every driver, cameras know
nothing of users, signatures or storage: ``hmi.records.images`` stores what a
capture returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import io
import json
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from PIL import Image, UnidentifiedImageError

from drivers.base import (
    DeviceRefused,
    Driver,
    DriverError,
    LinkDown,
    MethodCalling,
    PointError,
    Value,
    WriteNotConfirmed,
)

ImageFormat = Literal["png", "tiff"]
_PILLOW_FORMATS: dict[str, ImageFormat] = {"PNG": "png", "TIFF": "tiff"}
Settings = Mapping[str, Value]


class CameraError(DriverError):
    """A capture did not produce an image; the message says why in plain words."""


class CameraNotAnswering(CameraError):
    """The camera (or the device carrying its trigger) cannot be reached."""


class CaptureRefused(CameraError):
    """The camera answered, but refused the capture or the settings asked for."""


class CaptureTimeout(CameraError):
    """No image arrived within the camera's time limit."""


class NotAnImage(CameraError):
    """What the camera delivered is not a complete PNG or TIFF image."""


@dataclass(frozen=True)
class CaptureResult:
    """One picture and what is known about it.

    ``settings`` holds what the capture was asked for and what the camera
    reported; it becomes canonical JSON in the record. ``camera_time`` is the
    device's own time of the picture where it gives one (to compare clocks),
    never a substitute for the time the record is written.
    """

    image: bytes = field(repr=False)
    format: ImageFormat
    width: int
    height: int
    settings: dict[str, object]
    camera_time: datetime | None = None

    @property
    def size(self) -> int:
        return len(self.image)


@runtime_checkable
class Camera(Protocol):
    name: str

    async def capture(self, settings: Settings | None = None) -> CaptureResult:
        """Take one picture with ``settings`` (names the camera knows) and return it."""
        ...


def identify_image(data: bytes, what: str = "the image") -> tuple[ImageFormat, int, int]:
    """Format, width and height of a complete PNG or TIFF in ``data``, else ``NotAnImage``.

    The whole image is decoded, because a file caught while still being
    written often has a valid header and a missing end.
    """
    if not data:
        raise NotAnImage(f"{what} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = _PILLOW_FORMATS.get(img.format or "")
                if fmt is None:
                    raise NotAnImage(
                        f"{what} is a {img.format or 'unknown'} file; only PNG and TIFF are "
                        "recorded"
                    )
                img.load()
                width, height = img.size
    except NotAnImage:
        raise
    except UnidentifiedImageError as exc:
        raise NotAnImage(f"{what} is not a PNG or TIFF image ({len(data)} bytes)") from exc
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise NotAnImage(f"{what} is too large to be checked: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise NotAnImage(f"{what} is incomplete or damaged: {exc}") from exc
    return fmt, width, height


def _json_settings(text: str, camera: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CaptureRefused(f"camera {camera} reported settings that are not JSON") from exc
    if not isinstance(value, dict):
        raise CaptureRefused(f"camera {camera} reported settings that are not a JSON object")
    return value


def _aware(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


class OpcUaMethodCamera:
    """A camera behind an OPC UA method that returns the image as a ByteString.

    ``inputs`` names the method's input arguments in order; ``defaults`` gives a
    value for each one the caller may leave out. ``image_output`` is the index
    of the ByteString output; ``settings_output`` (optional) the index of a
    String output holding the camera's settings as a JSON object, whose
    ``time_setting`` entry (ISO 8601 with offset) becomes ``camera_time``.
    The simulated microscope's ``Capture(ExposureMs)`` fits the defaults.
    """

    def __init__(
        self,
        driver: MethodCalling,
        object_id: str,
        method_id: str,
        *,
        name: str = "",
        inputs: Sequence[str] = ("ExposureMs",),
        defaults: Settings | None = None,
        image_output: int = 0,
        settings_output: int | None = 3,
        time_setting: str | None = "time",
        timeout_s: float = 30.0,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.name = name or method_id
        self._driver = driver
        self._object_id = object_id
        self._method_id = method_id
        self._inputs = tuple(inputs)
        self._defaults = dict(defaults or {})
        self._image_output = image_output
        self._settings_output = settings_output
        self._time_setting = time_setting
        self._timeout_s = timeout_s

    def _arguments(self, settings: Settings) -> dict[str, Value]:
        unknown = sorted(set(settings) - set(self._inputs))
        if unknown:
            known = ", ".join(self._inputs) or "none"
            raise CaptureRefused(
                f"camera {self.name} has no setting {', '.join(unknown)}; its settings: {known}"
            )
        chosen: dict[str, Value] = {}
        for name in self._inputs:
            if name in settings:
                chosen[name] = settings[name]
            elif name in self._defaults:
                chosen[name] = self._defaults[name]
            else:
                raise CaptureRefused(f"camera {self.name} needs a value for {name}")
        return chosen

    async def capture(self, settings: Settings | None = None) -> CaptureResult:
        chosen = self._arguments(settings or {})
        try:
            async with asyncio.timeout(self._timeout_s):
                outputs = await self._driver.call(
                    self._object_id, self._method_id, *chosen.values()
                )
        except TimeoutError as exc:
            raise CaptureTimeout(
                f"camera {self.name} returned no image within {self._timeout_s:g} s"
            ) from exc
        except LinkDown as exc:
            raise CameraNotAnswering(f"camera {self.name} is not answering: {exc}") from exc
        except (DeviceRefused, PointError) as exc:
            raise CaptureRefused(f"camera {self.name} refused the capture: {exc}") from exc
        image = outputs[self._image_output] if len(outputs) > self._image_output else None
        if not isinstance(image, bytes):
            raise NotAnImage(f"camera {self.name} returned no image bytes")
        reported: dict[str, object] = {}
        if self._settings_output is not None and len(outputs) > self._settings_output:
            text = outputs[self._settings_output]
            if isinstance(text, str):
                reported = _json_settings(text, self.name)
        fmt, width, height = await asyncio.to_thread(
            identify_image, image, f"the image from camera {self.name}"
        )
        when = _aware(reported.get(self._time_setting)) if self._time_setting else None
        return CaptureResult(image, fmt, width, height, {**chosen, **reported}, when)


@dataclass(frozen=True, slots=True)
class _Seen:
    inode: int
    mtime_ns: int
    size: int


def _listing(folder: Path, pattern: str) -> dict[str, _Seen]:
    """The files in ``folder`` matching ``pattern`` (hidden and temporary names excluded)."""
    found: dict[str, _Seen] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not fnmatch.fnmatchcase(entry.name, pattern):
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            found[entry.name] = _Seen(st.st_ino, st.st_mtime_ns, st.st_size)
    return found


class ModbusTriggerCamera:
    """A camera triggered through a Modbus coil that drops its picture into a folder.

    ``capture`` refuses while the trigger is still set (someone else's picture
    is in progress), sets the trigger, then waits for a new file matching
    ``pattern`` in ``drop_folder``. A file that was there before the trigger
    is never taken unless it changes afterwards (a camera that rewrites one
    name). A new file is taken once it has kept the same size and time for
    ``settle_s`` and decodes as a whole PNG or TIFF, so a file still being
    written in place is not read half-way; one renamed into place is complete
    at once. Afterwards the trigger is reset if the camera has not reset it
    itself, so that both pulse and level triggers are ready for the next
    capture. The camera's files are left in the folder.
    """

    def __init__(
        self,
        driver: Driver,
        trigger_point: str,
        drop_folder: Path,
        pattern: str = "*.png",
        timeout_s: float = 10.0,
        *,
        name: str = "",
        settle_s: float = 0.1,
        poll_s: float = 0.02,
    ) -> None:
        if timeout_s <= 0 or settle_s < 0 or poll_s <= 0:
            raise ValueError("timeout_s and poll_s must be positive, settle_s not negative")
        self.name = name or f"{driver.name}.{trigger_point}"
        self._driver = driver
        self._trigger = trigger_point
        self._folder = Path(drop_folder)
        self._pattern = pattern
        self._timeout_s = timeout_s
        self._settle_s = settle_s
        self._poll_s = poll_s
        self._lock = asyncio.Lock()

    async def capture(self, settings: Settings | None = None) -> CaptureResult:
        if settings:
            raise CaptureRefused(
                f"camera {self.name} is triggered by a coil and takes no settings "
                f"(asked for {', '.join(sorted(settings))})"
            )
        async with self._lock:
            return await self._capture()

    async def _capture(self) -> CaptureResult:
        if not self._folder.is_dir():
            raise CameraNotAnswering(
                f"camera {self.name}: drop folder {self._folder} does not exist or is not a folder"
            )
        (state,) = await self._driver.read([self._trigger])
        if not state.good:
            raise CameraNotAnswering(
                f"camera {self.name} is not answering: trigger {self._trigger} cannot be read "
                f"({state.reason})"
            )
        if state.value:
            raise CaptureRefused(
                f"camera {self.name} is busy: trigger {self._trigger} is still set from the "
                "previous capture"
            )
        before = await asyncio.to_thread(_listing, self._folder, self._pattern)
        note = ""
        try:
            await self._driver.write(self._trigger, True)
        except WriteNotConfirmed as exc:
            # A pulse trigger may already be reset when it is read back; the file decides.
            note = f" (the trigger read back unset: {exc})"
        except LinkDown as exc:
            raise CameraNotAnswering(f"camera {self.name} is not answering: {exc}") from exc
        except (DeviceRefused, PointError) as exc:
            raise CaptureRefused(f"camera {self.name}: trigger refused: {exc}") from exc
        try:
            return await self._wait_for_file(before, note)
        finally:
            await self._release()

    async def _release(self) -> None:
        """Reset the trigger if it is still set; a failure shows at the next capture."""
        with contextlib.suppress(DriverError):
            (state,) = await self._driver.read([self._trigger])
            if state.good and state.value:
                await self._driver.write(self._trigger, False)

    async def _wait_for_file(self, before: dict[str, _Seen], note: str) -> CaptureResult:
        deadline = time.monotonic() + self._timeout_s
        watched: dict[str, tuple[_Seen, float]] = {}
        damaged = ""
        while True:
            now = time.monotonic()
            listing = await asyncio.to_thread(_listing, self._folder, self._pattern)
            fresh = {n: s for n, s in listing.items() if before.get(n) != s}
            for name, seen in sorted(fresh.items(), key=lambda item: item[1].mtime_ns):
                known = watched.get(name)
                if known is None or known[0] != seen:
                    watched[name] = (seen, now)
                    continue
                if seen.size == 0 or now - known[1] < self._settle_s:
                    continue
                path = self._folder / name
                try:
                    return await asyncio.to_thread(self._read, path, seen)
                except FileNotFoundError:
                    watched.pop(name, None)
                except NotAnImage as exc:
                    damaged = str(exc)
            if now >= deadline:
                raise self._timed_out(damaged, note)
            await asyncio.sleep(self._poll_s)

    def _read(self, path: Path, seen: _Seen) -> CaptureResult:
        data = path.read_bytes()
        fmt, width, height = identify_image(data, f"{path.name} from camera {self.name}")
        when = datetime.fromtimestamp(seen.mtime_ns / 1e9, UTC)
        settings: dict[str, object] = {"trigger": self._trigger, "file": path.name}
        return CaptureResult(data, fmt, width, height, settings, when)

    def _timed_out(self, damaged: str, note: str) -> CameraError:
        if damaged:
            return NotAnImage(
                f"camera {self.name}: no complete image within {self._timeout_s:g} s: {damaged}"
            )
        return CaptureTimeout(
            f"camera {self.name} wrote no new file matching {self._pattern} into "
            f"{self._folder} within {self._timeout_s:g} s of the trigger{note}"
        )
