"""A capture from the microscope: settings from the camera's configuration, signed, then the
stored image's hash, size and signer shown with a text-mode preview."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input
from ui_kit import PLANT_PASSWORD, Plant, dialog_text, login, wait_for

from hmi.ui.screens.camera import CameraScreen, CaptureDialog, CaptureOutcomeDialog, half_blocks
from hmi.ui.screens.esign import STATEMENT, SignDialog
from hmi.ui.screens.overview import OverviewScreen

pytestmark = pytest.mark.timeout(120)


async def test_capture_signed_shows_its_hash_and_preview(plant: Plant):
    app = plant.app()
    async with app.run_test(size=(100, 40)) as pilot:
        await login(pilot, "op1")
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
        app.open_page("camera")  # from the F1 page list
        await wait_for(pilot, lambda: isinstance(app.screen, CameraScreen), "camera page")
        table = app.screen.query_one("#cameras", DataTable)
        row = next(r for r in range(table.row_count) if table.get_row_at(r)[0] == "MIC1.CAM")
        table.move_cursor(row=row)
        assert "ExposureMs 0.1 … 1000 ms" in str(table.get_row_at(row)[1])
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CaptureDialog), "capture dialog")
        assert app.screen.query_one("#set-ExposureMs", Input).value == "10.0"
        app.screen.query_one("#set-ExposureMs", Input).value = "20"
        app.screen.query_one("#reason", Input).value = "sample 12 record"
        await pilot.click("#go")
        await wait_for(pilot, lambda: isinstance(app.screen, SignDialog), "signature dialog")
        shown = dialog_text(app)
        assert STATEMENT in shown and "MIC1.CAM" in shown and "sample 12 record" in shown
        if app.screen.query("#user"):
            app.screen.query_one("#user", Input).value = "op1"
        app.screen.query_one("#password", Input).value = PLANT_PASSWORD
        await pilot.click("#sign")
        await wait_for(
            pilot, lambda: isinstance(app.screen, CaptureOutcomeDialog), "outcome", timeout=40
        )
        outcome = app.screen.outcome
        text = dialog_text(app)
        assert outcome.sha256 in text and "Olga Operator (op1)" in text
        assert "▀" in text  # the preview
    rows = plant.query("SELECT sha256 FROM captures")
    assert (outcome.sha256,) in rows


def test_half_blocks_draws_two_pixel_rows_per_line():
    import io

    from PIL import Image

    img = Image.new("RGB", (4, 4), (255, 0, 0))
    for x in range(4):
        for y in (2, 3):
            img.putpixel((x, y), (0, 0, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    text = half_blocks(buf.getvalue(), columns=4)
    assert text.plain == "▀▀▀▀\n▀▀▀▀"
    assert str(text.spans[0].style) == "#ff0000 on #ff0000"  # rows 0 and 1
    assert str(text.spans[-1].style) == "#0000ff on #0000ff"  # rows 2 and 3
