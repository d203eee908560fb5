"""Every page this user may open, in one list: the way to pages that have no function key.

A terminal has only so many function keys, and some (Shift+F3 and the like)
never reach a program through some terminals. F1 lists the pages the
session's roles may open, with their keys, so every page is reachable with
the arrow keys and Enter on any terminal.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from hmi.ui.screens.base import CustosDialog


class PagesDialog(CustosDialog[str]):
    """Answers with the chosen page's name; Escape closes it."""

    def __init__(self, pages: list[tuple[str, str, str | None]]) -> None:
        """``pages``: (name, label, key or None) of each page the user may open."""
        super().__init__()
        self.pages = pages

    def compose(self) -> ComposeResult:
        options = [
            Option(f"{(key or '').upper():<10} {label}", id=name) for name, label, key in self.pages
        ]
        with Vertical(id="dialog"):
            yield Static("Go to page", classes="dialog-title")
            yield OptionList(*options, id="pages")
            yield Static("↑↓ choose · Enter opens · Esc closes")

    def on_mount(self) -> None:
        self.query_one("#pages", OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.dismiss(event.option.id)
