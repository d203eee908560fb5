"""The rules a run's actions are judged by, apart from acting on them.

The sequencer uses these to refuse an action, and ``choices`` uses the very
same functions to tell a screen what it may offer, so a button that is
enabled never leads to a refusal the screen could have predicted, and a
greyed-out one shows the reason the refusal would give.
"""

from __future__ import annotations

from dataclasses import dataclass

from hmi.core.preconditions import Reader, evaluate
from hmi.core.runs import Run, RunState, SequenceError

COMMAND_NAMES = {"write_setpoint": "Setpoint write", "capture": "Capture", "operate": "Operation"}


@dataclass(frozen=True)
class Choice:
    """One thing a session might do now, whether it may, and why not."""

    action: str
    """``start``, ``hold``, ``restart``, ``abort``, ``enter_data``, ``sign``,
    ``complete_step`` or a command kind (``write_setpoint``, ``capture``, ``operate``)."""
    target: str | None
    allowed: bool
    why: str = ""


def require_running(run: Run) -> None:
    if run.state is not RunState.RUNNING:
        raise SequenceError(
            f"The run of '{run.procedure.title}' is {run.state.value}; this needs a running run."
        )


def signable(run: Run, meaning: str, roles: tuple[str, ...], signer: str) -> str:
    """The role under which ``signer`` gives ``meaning`` now, or a SequenceError."""
    require_running(run)
    if run.missing_data():
        names = ", ".join(f.shown for f in run.missing_data())
        raise SequenceError(f"Enter {names} before signing {run.step_name()}.")
    wanted = [(m, r) for _, m, r in run.unsigned() if m == meaning]
    if not wanted:
        raise SequenceError(f"{run.step_name()} needs no further '{meaning}' signature.")
    if any(s.signer_id == signer for s in run.signatures):
        raise SequenceError(
            f"{signer} has already signed {run.step_name()}; the next signature must be "
            "given by a different person."
        )
    role = next((r for _, r in wanted if r in roles), None)
    if role is None:
        needed = " or ".join(sorted({r for _, r in wanted}))
        raise SequenceError(
            f"The '{meaning}' signature of {run.step_name()} is given by a {needed}; "
            f"{signer} is not one."
        )
    return role


def step_blockers(run: Run, read: Reader) -> list[str]:
    """Why the current step cannot be completed now (empty: it can)."""
    out = []
    for condition in run.procedure.conditions(run.step_index):
        verdict = evaluate(condition, read)
        if not verdict.ok:
            out.append(verdict.reason)
    out += [f"{f.shown} is not entered" for f in run.missing_data()]
    out += [f"the '{m}' signature of a {r} is missing" for _, m, r in run.unsigned()]
    return out


def transition_check(run: Run, name: str, roles: tuple[str, ...]) -> None:
    """Refuse hold, restart or abort in the wrong state or by a role the procedure excludes."""
    run.check(name)
    if run.blocked is not None and name != "abort":
        raise SequenceError(
            f"The run of '{run.procedure.title}' can only be aborted: {run.blocked}."
        )
    if name == "start":
        return
    allowed = run.procedure.abort_roles if name == "abort" else run.procedure.hold_roles
    if not set(roles) & set(allowed):
        raise SequenceError(
            f"Only a {' or '.join(allowed)} may {name} a run of '{run.procedure.title}'."
        )


def gate_reason(run: Run, kind: str, target: str) -> str | None:
    """Why ``kind`` on ``target`` is not allowed in the run now (None: it is)."""
    name = f"{COMMAND_NAMES.get(kind, kind)} of {target}"
    if run.state is not RunState.RUNNING:
        return f"{name} is not allowed: the run of '{run.procedure.title}' is {run.state.value}."
    if run.step.allows(kind, target):
        return None
    steps = enumerate(run.procedure.steps, start=1)
    where = [f"step {n} '{s.title}'" for n, s in steps if s.allows(kind, target)]
    if not where:
        return f"{name} is not part of procedure '{run.procedure.title}'."
    return f"{name} is allowed in {' and '.join(where)}; the run is in {run.step_name()}."


def choices(
    run: Run, user_id: str, full_name: str, roles: tuple[str, ...], may: bool, read: Reader
) -> list[Choice]:
    """Every action and command of the run's procedure, allowed now or not and why.

    ``may`` is whether the person may run procedures at all (permission and an
    active session); without it everything is refused for that one reason.
    """
    no = "" if may else f"{full_name} may not run procedures"
    out: list[Choice] = []

    def add(action: str, target: str | None, why: str) -> None:
        out.append(Choice(action, target, not (no or why), no or why))

    for name in ("start", "hold", "restart", "abort"):
        try:
            transition_check(run, name, roles)
            add(name, None, "")
        except SequenceError as exc:
            add(name, None, exc.message)
    live = "" if run.state is RunState.RUNNING else f"the run is {run.state.value}"
    signed = f"{run.step_name()} is already signed" if run.signatures else ""
    for f in run.step.data:
        add("enter_data", f.name, live or signed)
    for _, meaning, _ in run.unsigned():
        try:
            signable(run, meaning, roles, user_id)
            add("sign", meaning, "")
        except SequenceError as exc:
            add("sign", meaning, exc.message)
    add("complete_step", run.step.id, live or "; ".join(step_blockers(run, read)))
    seen: set[str] = set()
    for step in run.procedure.steps:
        for command in step.commands:
            if command not in seen:
                seen.add(command)
                kind, _, target = command.partition(":")
                add(kind, target, gate_reason(run, kind, target) or "")
    return out
