"""The ``plant`` fixture for every UI test module (defined in ui_kit)."""

from ui_kit import plant_fixture  # noqa: F401
