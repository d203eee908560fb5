"""The Custos look: ISA-101 "high performance" grey.

Normal operation is calm and grey; colour is kept for what is abnormal
(alarms, bad quality, a lost link, the logout countdown) so that it stands
out. Every abnormal state is also written in words or glyphs.
"""

from __future__ import annotations

from textual.theme import Theme

CUSTOS_THEME = Theme(
    name="custos",
    primary="#7d8a99",
    secondary="#6b7280",
    accent="#9aa5b1",
    foreground="#d4d4d4",
    background="#2e2e2e",
    surface="#383838",
    panel="#444444",
    warning="#e0b000",
    error="#e04040",
    success="#8a8a8a",
    dark=True,
)
