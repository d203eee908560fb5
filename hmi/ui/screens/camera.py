"""Captures: a picture taken under signature, then its record and a text-mode preview.

The capture dialog asks for the camera, its settings (as the camera's
configuration declares them, with limits and units), and a reason; the core
checks them (``preview_capture``) and returns exactly what is to be signed;
the signature dialog then takes the picture. The outcome shows the stored
image's SHA-256, size, dimensions and who signed, and the image itself drawn
with half-block characters (two pixel rows per terminal row).
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

from PIL import Image
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from hmi.core.api_types import CameraSettingView, CaptureOutcome, SigningPreview
from hmi.core.captures import CaptureRequest
from hmi.core.commands import Credentials
from hmi.core.errors import HmiError
from hmi.ui.screens.base import CustosDialog, CustosForm, PageScreen
from hmi.ui.screens.esign import SignDialog, signed_lines

if TYPE_CHECKING:
    from hmi.ui.app import CustosApp

PREVIEW_COLUMNS = 48


def half_blocks(data: bytes, columns: int = PREVIEW_COLUMNS) -> Text:
    """The image as rows of ``▀``: foreground the upper pixel, background the lower one."""
    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB")
        width = max(1, min(columns, rgb.width))
        height = max(2, round(rgb.height * width / rgb.width / 2) * 2)
        small = rgb.resize((width, height))
    px = small.load()
    assert px is not None
    out = Text()
    for y in range(0, height, 2):
        for x in range(width):
            top = cast(tuple[int, int, int], px[x, y])
            low = cast(tuple[int, int, int], px[x, y + 1])
            out.append("▀", style=Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*low)))
        if y + 2 < height:
            out.append("\n")
    return out


def outcome_lines(outcome: CaptureOutcome) -> list[tuple[str, str]]:
    rows = [
        ("Camera", outcome.camera),
        ("SHA-256", outcome.sha256),
        ("Size", f"{outcome.size} bytes"),
        ("Image", f"{outcome.width} x {outcome.height} {outcome.format}"),
        ("Sequence", str(outcome.capture_seq)),
        ("Settings", ", ".join(f"{k}={v}" for k, v in outcome.settings.items()) or "defaults"),
    ]
    return rows + [("Signed", s) for s in outcome.signatures]


def setting_hint(s: CameraSettingView) -> str:
    low = "" if s.low is None else f"{s.low:g}"
    high = "" if s.high is None else f"{s.high:g}"
    span = f" {low} … {high}" if low or high else ""
    return f"{s.name}{span} {s.units}".rstrip()


def parse_setting(s: CameraSettingView, text: str) -> bool | int | float | str:
    text = text.strip()
    if s.type == "string":
        return text
    if s.type == "bool":
        return text.lower() in ("on", "1", "true", "yes")
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{s.name}: {text!r} is not a number.") from None
    return int(number) if s.type == "int" and number.is_integer() else number


@dataclass(frozen=True)
class PreparedCapture:
    request: CaptureRequest
    preview: SigningPreview


def capture_flow(
    screen: Screen[Any],
    camera: str | None = None,
    run_id: str | None = None,
    done: Callable[[CaptureOutcome], object] | None = None,
) -> None:
    """Capture dialog, then signature, then the outcome with the preview."""

    def signed(outcome: CaptureOutcome | None) -> None:
        if outcome is not None:
            screen.app.push_screen(CaptureOutcomeDialog(outcome))
            if done is not None:
                done(outcome)

    def prepared(ready: PreparedCapture | None) -> None:
        if ready is None:
            return
        app = cast("CustosApp", screen.app)
        api = app.api

        def act(signature: Credentials, _: str) -> Awaitable[CaptureOutcome]:
            r = ready.request
            request = CaptureRequest(
                r.camera, r.reason, signature, r.settings, run_id=r.run_id, step=r.step
            )
            assert app.session is not None
            return api.capture(app.session, app.origin, request)

        screen.app.push_screen(
            SignDialog(
                "Electronic signature",
                signed_lines(ready.preview),
                act,
                needs_user_id=ready.preview.needs_user_id,
            ),
            signed,
        )

    screen.app.push_screen(CaptureDialog(camera, run_id=run_id), prepared)


class CaptureDialog(CustosForm[PreparedCapture]):
    def __init__(self, camera: str | None = None, *, run_id: str | None = None) -> None:
        super().__init__()
        self.camera = camera
        self.run_id = run_id
        self.settings: list[CameraSettingView] = []

    def compose(self) -> ComposeResult:
        cameras = self.api.cameras(self.session)
        camera = self.camera or (cameras[0] if cameras else None)
        self.camera = camera
        if camera is not None:
            self.settings = self.api.camera_settings(self.session, camera)
        with Vertical(id="dialog"):
            yield Static("Capture an image", classes="dialog-title")
            if self.run_id is not None:
                yield Static(f"For procedure run {self.run_id[:8]}")
            yield Label("Camera")
            yield Select(
                [(c, c) for c in cameras],
                value=camera if camera is not None else Select.NULL,
                id="camera",
                allow_blank=camera is None,
                compact=True,
            )
            for s in self.settings:
                yield Label(f"{s.description or s.name} ({setting_hint(s)})")
                default = "" if s.default is None else f"{s.default}"
                yield Input(default, id=f"set-{s.name}")
            yield Label("Reason")
            yield Input(id="reason", placeholder="why (recorded with the signature)")
            yield Static("", id="notice")
            with Horizontal(classes="buttons"):
                yield Button("Continue to signature", id="go", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    async def on_select_changed(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL and event.value != self.camera:
            self.camera = str(event.value)
            await self.recompose()

    def submit(self) -> None:
        notice = self.query_one("#notice", Static)
        if self.camera is None:
            notice.update("This plant has no camera.")
            return
        try:
            settings = {
                s.name: parse_setting(s, self.query_one(f"#set-{s.name}", Input).value)
                for s in self.settings
                if self.query_one(f"#set-{s.name}", Input).value.strip()
            }
        except ValueError as exc:
            notice.update(str(exc))
            return
        reason = self.query_one("#reason", Input).value.strip()
        request = CaptureRequest(self.camera, reason, None, settings or None, run_id=self.run_id)
        notice.update("Checking…")
        self.call_core(
            self.api.preview_capture(self.session, self.origin, request),
            done=lambda preview: self.dismiss(PreparedCapture(request, preview)),
            failed=lambda error: notice.update(error.message),
        )


class CaptureOutcomeDialog(CustosDialog[None]):
    """The stored capture: its record and the image as text."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter", "cancel", "Close")]

    def __init__(self, outcome: CaptureOutcome) -> None:
        super().__init__(classes="outcome")
        self.outcome = outcome

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="capture"):
            yield Static("Captured", classes="dialog-title")
            for label, text in outcome_lines(self.outcome):
                yield Horizontal(Label(label, classes="field-label"), Static(text), classes="row")
            yield Static(self.preview(), id="preview")
            yield Button("OK", id="ok")

    def preview(self) -> Text:
        try:
            data = self.api.capture_image(self.session, self.outcome.sha256)
            return half_blocks(data)
        except HmiError as exc:
            return Text(f"(no preview: {exc.message})")
        except Exception as exc:  # an image Pillow cannot read: the record stands
            return Text(f"(no preview: {type(exc).__name__})")

    def on_mount(self) -> None:
        self.query_one("#ok", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)


class CameraScreen(PageScreen):
    """The cameras of the plant and the captures taken at this terminal since login."""

    page = "camera"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "capture", "Capture"),
        Binding("v", "view", "View capture"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: list[CaptureOutcome] = []

    def compose_body(self) -> ComposeResult:
        yield Static("Cameras (c: capture the selected one)", classes="section")
        yield DataTable(id="cameras", cursor_type="row")
        yield Static("Captures at this terminal (v: view)", classes="section")
        yield DataTable(id="captures", cursor_type="row")

    def on_mount(self) -> None:
        cameras = self.query_one("#cameras", DataTable)
        cameras.add_columns("Camera", "Settings")
        for name in self.api.cameras(self.session):
            settings = ", ".join(
                setting_hint(s) for s in self.api.camera_settings(self.session, name)
            )
            cameras.add_row(name, settings or "(none)", key=name)
        self.query_one("#captures", DataTable).add_columns("#", "Camera", "Image", "SHA-256")
        cameras.focus()

    def action_capture(self) -> None:
        table = self.query_one("#cameras", DataTable)
        camera = None
        if table.row_count:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
            camera = str(row_key.value)
        capture_flow(self, camera, done=self.add)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.data_table.id == "cameras":
            self.action_capture()
        else:
            self.action_view()

    def add(self, outcome: CaptureOutcome) -> None:
        self.outcomes.append(outcome)
        self.query_one("#captures", DataTable).add_row(
            str(outcome.capture_seq),
            outcome.camera,
            f"{outcome.width}x{outcome.height} {outcome.format}",
            outcome.sha256[:16] + "…",
        )

    def action_view(self) -> None:
        table = self.query_one("#captures", DataTable)
        if not self.outcomes or table.row_count == 0:
            self.notify("No capture yet at this terminal.")
            return
        self.app.push_screen(CaptureOutcomeDialog(self.outcomes[table.cursor_row]))
