"""The one way a screen asks the core for something.

Core calls may hash a password (argon2, in a thread), wait for a device or
for the database writer, so they never run inside a message handler: the
coroutine runs in a Textual worker and the screen keeps refreshing. A refusal
(``HmiError``) has already been recorded by the core; here it is only shown,
as a dialog with the core's own title and message. Success counts as
activity, so the session's inactivity timer restarts.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from textual.dom import DOMNode
from textual.worker import Worker

from hmi.core.errors import HmiError

if TYPE_CHECKING:
    from hmi.core.api import TerminalAPI
    from hmi.core.identity import Session
    from hmi.core.records import Origin
    from hmi.ui.app import CustosApp

log = logging.getLogger(__name__)
T = TypeVar("T")

UNEXPECTED = (
    "The terminal could not complete the request ({what}). Nothing is done without its "
    "record: check the audit trail before trying again."
)


def call_core(
    node: DOMNode,
    call: Awaitable[T],
    *,
    done: Callable[[T], object] | None = None,
    failed: Callable[[HmiError], object] | None = None,
    group: str = "core",
) -> Worker[None]:
    """Run ``call`` in a worker; ``done(result)`` on success, ``failed(error)`` then a dialog
    on a refusal. ``done`` and ``failed`` run on the UI's loop and may be coroutines."""
    app = cast("CustosApp", node.app)

    async def run() -> None:
        try:
            result = await call
        except HmiError as exc:
            if failed is not None:
                await _maybe_await(failed(exc))
            app.show_refusal(exc)
            return
        except Exception as exc:  # the UI must survive a bug; the core kept its records
            log.exception("core call failed")
            error = HmiError(UNEXPECTED.format(what=type(exc).__name__), "Not completed")
            if failed is not None:
                await _maybe_await(failed(error))
            app.show_refusal(error)
            return
        app.touch()
        if done is not None:
            await _maybe_await(done(result))

    return node.run_worker(run(), group=group, exit_on_error=False)


async def _maybe_await(value: object) -> None:
    if inspect.iscoroutine(value):  # not AwaitComplete: dismiss() must not be awaited here
        await value


class CoreAccess:
    """What every Custos screen reaches through its app: the API, the session, the origin.

    Mixed into ``Screen`` and ``ModalScreen`` subclasses (see ``screens/base.py``).
    """

    @property
    def custos(self) -> CustosApp:
        return cast("CustosApp", cast(DOMNode, self).app)

    @property
    def api(self) -> TerminalAPI:
        return self.custos.api

    @property
    def origin(self) -> Origin:
        return self.custos.origin

    @property
    def session(self) -> Session:
        """The logged-in session; screens that need one exist only while there is one."""
        session = self.custos.session
        if session is None:
            raise RuntimeError("no session: this screen is shown only while a user is logged in")
        return session

    def call_core(
        self,
        call: Awaitable[T],
        *,
        done: Callable[[T], object] | None = None,
        failed: Callable[[HmiError], object] | None = None,
    ) -> Worker[Any]:
        return call_core(cast(DOMNode, self), call, done=done, failed=failed)
