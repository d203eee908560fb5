"""Base classes every Custos screen derives from.

``PageScreen`` is a full screen reached from the navigation (overview,
alarms, ...): it always carries the status header, the alarm banner and the
footer, so those stay visible whatever the page. ``CustosDialog`` is a modal
that answers with ``dismiss(result)``. Both reach the core only through
``CoreAccess`` (``self.api``, ``self.session``, ``self.origin``,
``self.call_core``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Input

from hmi.ui.core_call import CoreAccess
from hmi.ui.widgets.banner import AlarmBannerBar
from hmi.ui.widgets.header import StatusHeader

R = TypeVar("R")


class CustosScreen(CoreAccess, Screen[None]):
    """A full screen: header on top, footer with the bindings at the bottom."""

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> Iterable[Widget]:
        return ()


class PageScreen(CustosScreen):
    """A screen of the navigation, shown only to a logged-in user; adds the alarm banner.

    ``page`` is its name in ``hmi.ui.navigation.PAGES``.
    """

    page = ""

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        yield AlarmBannerBar()
        yield from self.compose_body()
        yield Footer()


class CustosDialog(CoreAccess, ModalScreen[R]):
    """A modal dialog; Escape cancels (dismisses with None)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def action_cancel(self) -> None:
        self.dismiss(None)


class CustosForm(CustosDialog[R]):
    """A dialog of fields: Enter moves to the next field and, in ``submit_field``, submits;
    the ``go`` button submits and any other button cancels."""

    submit_field = "reason"

    def submit(self) -> None:
        raise NotImplementedError

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == self.submit_field:
            self.submit()
        else:
            self.focus_next()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "go":
            self.submit()
        else:
            self.dismiss(None)
