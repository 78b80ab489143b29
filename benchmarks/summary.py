"""What a scenario returns: rows of figures, some with a goal, which the report prints side by side.

A figure carries its goal, so no table can show a number without the goal it is judged by, and
the JSON summary holds the same judgement as the Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Value = float | int | str | None
SYMBOLS = {"<=": "≤", ">=": "≥", "==": "="}
MARKS = {True: "met ✓", False: "NOT met ✗", None: "not measured"}


@dataclass(frozen=True)
class Goal:
    """``value op limit`` must hold, e.g. ``Goal("<=", 0.3)``; ``why`` names it when the limit does not."""

    op: Literal["<=", ">=", "=="]
    limit: float
    why: str | None = None

    def met(self, value: Value) -> bool | None:
        if not isinstance(value, (int, float)):
            return None
        if self.op == "<=":
            return value <= self.limit
        if self.op == ">=":
            return value >= self.limit
        return value == self.limit

    def describe(self, unit: str = "") -> str:
        limit = f"{self.limit:g}{' ' + unit if unit else ''}"
        text = f"{SYMBOLS[self.op]} {limit}"
        return f"{text}, {self.why}" if self.why else text


@dataclass(frozen=True)
class Figure:
    """One number of one row; ``beside`` is shown next to it when there is no goal (e.g. a lower bound)."""

    key: str
    label: str
    value: Value
    unit: str = ""
    digits: int = 2
    goal: Goal | None = None
    beside: str | None = None

    @property
    def met(self) -> bool | None:
        return self.goal.met(self.value) if self.goal else None

    def shown(self) -> str:
        """The value with its unit, e.g. ``0.25`` or ``1.9 s``; ``n/a`` when not measured."""
        if self.value is None:
            return "n/a"
        text = f"{self.value:.{self.digits}f}" if isinstance(self.value, float) else str(self.value)
        return f"{text} {self.unit}" if self.unit and not isinstance(self.value, str) else text

    def judged(self) -> str:
        """The value with its goal and mark beside it, e.g. ``0.25 (goal ≤ 0.3: met ✓)``."""
        if self.goal is not None:
            return f"{self.shown()} (goal {self.goal.describe(self.unit)}: {MARKS[self.met]})"
        if self.beside:
            return f"{self.shown()} ({self.beside})"
        return self.shown()

    def as_json(self) -> dict[str, Any]:
        value = round(self.value, max(self.digits, 3)) if isinstance(self.value, float) else self.value
        data: dict[str, Any] = {"label": self.label, "value": value}
        if self.unit:
            data["unit"] = self.unit
        if self.goal is not None:
            data["goal"] = self.goal.describe(self.unit)
            data["met"] = self.met
        if self.beside:
            data["beside"] = self.beside
        return data


@dataclass
class Row:
    label: str
    figures: list[Figure]

    def value(self, key: str) -> Value:
        return next((f.value for f in self.figures if f.key == key), None)


@dataclass
class Summary:
    """A scenario's outcome: its rows, the goals it is judged by (as stated), settings and notes."""

    scenario: str
    title: str
    quick: bool
    goals: list[str]
    rows: list[Row]
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def judged(self) -> list[tuple[Row, Figure]]:
        return [(row, f) for row in self.rows for f in row.figures if f.goal is not None]
