"""A Terminal API stand-in with fixed values, for snapshots that must not change run to run.

Only what the login, overview, alarms and procedures screens call; everything a real plant does is
tested against the runtime in the other UI tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from hmi.core.api_types import (
    AlarmBanner,
    AlarmView,
    FieldView,
    ProcedureInfo,
    RunView,
    StepView,
    TagInfo,
    TagReading,
)
from hmi.core.identity import Session
from hmi.core.records import Origin, UserState
from hmi.core.step_rules import Choice

T0 = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)
ORIGIN = Origin("T-CONSOLE-1", "local:op@host")

TAGS = (
    TagInfo("BR101.AGITATOR_RUN", "Agitator run command", "BR101", "bioreactor", "PLC1", "bool",
            "", True, None, None),
    TagInfo("BR101.TEMP_PV", "Vessel temperature", "BR101", "bioreactor", "PLC1", "float32",
            "°C", False, 0.0, 60.0),
    TagInfo("BR101.TEMP_SP", "Temperature setpoint", "BR101", "bioreactor", "PLC1", "float32",
            "°C", True, 4.0, 45.0),
    TagInfo("BR101.PH_PV", "pH", "BR101", "bioreactor", "PLC1", "float32", "pH", False, 0.0,
            14.0),
    TagInfo("MIC1.Focus", "Focus position", "MIC1", "imaging", "MIC1", "float64", "µm", True,
            0.0, 5000.0),
)  # fmt: skip

VALUES: dict[str, tuple[object, str, str]] = {
    "BR101.AGITATOR_RUN": (True, "GOOD", ""),
    "BR101.TEMP_PV": (29.5, "GOOD", ""),
    "BR101.TEMP_SP": (37.0, "GOOD", ""),
    "BR101.PH_PV": (None, "BAD", "probe fault"),
    "MIC1.Focus": (1250.0, "GOOD", ""),
}

ALARM = AlarmView(
    "BR101.TEMP_PV.lo", "BR101.TEMP_PV", "low", 3, "!! P3", "Vessel temperature L (30)",
    "UNACK_ACTIVE", True, "29.5", 30.0, T0, None, None,
)  # fmt: skip


SHELVED = AlarmView(
    "BR101.PH_PV.hi", "BR101.PH_PV", "high", 2, "!!! P2", "pH H (7.6)", "SHELVED", True,
    "7.7", 7.6, T0, datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC),
    "Sam Supervisor: probe being recalibrated",
)  # fmt: skip

RUN = RunView(
    "r-0001-demo", "bioreactor-startup", "Bioreactor start-up", "1", "running", 2,
    "Enter lot number", T0, T0, False,
    (
        StepView(1, "pre-checks", "Pre-checks", "done", None, (), ("performed (operator)",), (),
                 ()),
        StepView(2, "lot-number", "Enter lot number", "current", None, (), (),
                 (("BR101.ESTOP == false", True, ""),
                  ("BR101.HEATER_FAULT == false", False, "BR101.HEATER_FAULT is true")),
                 (FieldView("lot_number", "Lot number", "text", "", (), None, None,
                            "LOT-[0-9]{6}", None),
                  FieldView("volume_l", "Working volume", "float", "L", (), 1.0, 200.0, None,
                            "120.0"))),
        StepView(3, "agitation", "Start agitation", "pending", 300.0, (), (), (), ()),
    ),
    (
        Choice("hold", None, True),
        Choice("abort", None, False, "Only a supervisor may abort a run of 'Bioreactor start-up'."),
        Choice("enter_data", "lot_number", True),
        Choice("complete_step", "lot-number", False, "BR101.HEATER_FAULT is true"),
    ),
)  # fmt: skip


class FakeProcedures:
    def procedures(self, session: Session) -> list[ProcedureInfo]:
        return [ProcedureInfo("bioreactor-startup", "Bioreactor start-up", "1", ("a", "b", "c"))]

    def runs(self, session: Session, *, include_finished: bool = False) -> list[RunView]:
        return [RUN]

    def view(self, session: Session, run_id: str) -> RunView:
        return RUN


def operator_session() -> Session:
    user = UserState("op1", "Olga Operator", ("operator",), True, False, 0, False, T0, T0, "admin1")
    return Session("s-1", user, ORIGIN, T0, T0, T0)


class FakeAlarms:
    def banner(self, session: Session) -> AlarmBanner:
        return AlarmBanner(1, ALARM)

    def active(self, session: Session) -> list[AlarmView]:
        return [ALARM]

    def hidden(self, session: Session) -> list[AlarmView]:
        return [SHELVED]


class FakeAPI:
    def __init__(self) -> None:
        self.alarms = FakeAlarms()
        self.procedures = FakeProcedures()
        self.records = None  # no records desk: no notifications to look for

    def touch(self, session: Session) -> None:
        pass

    def permissions(self, session: Session) -> frozenset[str]:
        return frozenset({"write_setpoint", "operate_equipment", "acknowledge_alarm"})

    def seconds_to_logout(self, session: Session) -> float:
        return 600.0

    def tag_definitions(self, session: Session) -> list[TagInfo]:
        return list(TAGS)

    def read_tags(self, session: Session, names: Sequence[str] = ()) -> list[TagReading]:
        wanted = names or sorted(VALUES)
        units = {t.name: t.units for t in TAGS}
        out = []
        for name in wanted:
            value, quality, reason = VALUES[name]
            out.append(TagReading(name, value, quality, units[name], T0, reason))  # type: ignore[arg-type]
        return out
