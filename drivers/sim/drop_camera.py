"""The simulated skid's camera: a coil triggers it, a PNG lands in a drop folder.

Real cameras of this kind write to a network share that the HMI host reads,
so the file must never be seen half-written: the picture is written under a
hidden temporary name, flushed, and renamed into place in one step. The image
shows the process values at the moment of the trigger and a frame number, so
no two pictures are the same.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, ImageDraw

log = logging.getLogger(__name__)

IMAGE_SIZE = (160, 120)

_BARS: tuple[tuple[str, str, float], ...] = (
    ("TEMP_PV", "T", 50.0),
    ("PH_PV", "pH", 14.0),
    ("DO_PV", "DO", 100.0),
    ("AGIT_PV", "AG", 600.0),
    ("VOLUME_PV", "V", 100.0),
)


def render_process_png(values: Mapping[str, float], frame: int) -> bytes:
    """A greyscale PNG: one bar per process value (full scale at the limit above) and the text."""
    img = Image.new("L", IMAGE_SIZE, 16)
    draw = ImageDraw.Draw(img)
    width, height = IMAGE_SIZE
    bar = width // (len(_BARS) * 2)
    for i, (name, label, full) in enumerate(_BARS):
        value = float(values.get(name, 0.0))
        top = height - 14 - round(min(1.0, max(0.0, value / full)) * (height - 40))
        x = bar // 2 + i * 2 * bar
        draw.rectangle((x, top, x + bar, height - 14), fill=120 + 25 * i)
        draw.text((x, height - 12), label, fill=255)
    temp, ph = float(values.get("TEMP_PV", 0.0)), float(values.get("PH_PV", 0.0))
    draw.text((2, 2), f"#{frame} T {temp:.2f} pH {ph:.2f}", fill=255)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def drop_file(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` as ``folder/name`` so that it appears complete or not at all."""
    fd, temp = tempfile.mkstemp(prefix=".incoming-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        target = folder / name
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


class DropCamera:
    """Takes a picture ``delay`` seconds after a trigger and reports when the file is in place."""

    def __init__(self, folder: Path, delay: float = 0.05) -> None:
        self.folder = Path(folder)
        self.delay = delay
        self.busy = False
        self.pictures: list[Path] = []
        """Files written so far, oldest first."""

    def take(self, values: Callable[[], Mapping[str, float]], done: Callable[[], None]) -> None:
        """Start one picture unless one is in progress; ``done`` runs once the file is in place.

        On a failure (e.g. the folder is gone) ``done`` is not called, so the
        trigger stays set, as a real camera that failed leaves it.
        """
        if self.busy:
            return
        self.busy = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._shoot(values, done)
            return
        loop.call_later(self.delay, self._shoot, values, done)

    def _shoot(self, values: Callable[[], Mapping[str, float]], done: Callable[[], None]) -> None:
        frame = len(self.pictures) + 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        try:
            path = drop_file(
                self.folder, f"capture-{stamp}-{frame:05d}.png", render_process_png(values(), frame)
            )
        except OSError as exc:
            log.warning("simulated camera: no picture written to %s: %s", self.folder, exc)
            return
        finally:
            self.busy = False
        self.pictures.append(path)
        done()
