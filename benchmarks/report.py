"""Markdown tables and compact JSON summaries of scenarios, each figure beside its goal.

``results/<scenario>.md`` is for people (the table, the goals, how the run was made);
``results/<scenario>.json`` is for tools: the same figures, goals and marks, with settings,
machine, versions and commit, and no raw per-job data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.summary import MARKS, Figure, Row, Summary

QUICK_BANNER = (
    "**Quick run**: fewer jobs, shorter queues or fewer repetitions than the goals are stated for; "
    "it shows that the scenario works end to end, and its marks only hint at a full run's."
)


@dataclass(frozen=True)
class RunInfo:
    """How and where a scenario was run: recorded beside its figures."""

    date: str
    started: str
    duration_seconds: float
    command: str
    machine: dict[str, Any]
    versions: dict[str, str]
    code: dict[str, Any]
    code_text: str
    cpus: dict[str, Any]
    cpus_text: str


def _columns(rows: list[Row]) -> list[str]:
    keys: dict[str, str] = {}
    for row in rows:
        for figure in row.figures:
            keys.setdefault(figure.key, figure.label)
    return list(keys)


def table(summary: Summary) -> str:
    """The rows as a Markdown table padded to read as well in a terminal; one row is shown vertically."""
    if len(summary.rows) == 1:
        (row,) = summary.rows
        header = ["figure", row.label, "goal or bound", "mark"]
        cells = [[f.label, f.shown(), *_judgement(f)] for f in row.figures]
        return _grid(header, cells)
    keys = _columns(summary.rows)
    labels = {f.key: f.label for row in summary.rows for f in row.figures}
    header = ["", *(labels[key] for key in keys)]
    cells = [
        [row.label, *(_cell(next((f for f in row.figures if f.key == key), None)) for key in keys)]
        for row in summary.rows
    ]
    return _grid(header, cells)


def _judgement(figure: Figure) -> list[str]:
    if figure.goal is not None:
        return [f"goal {figure.goal.describe(figure.unit)}", MARKS[figure.met]]
    return [figure.beside or "", ""]


def _grid(header: list[str], cells: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(c) for c in cells)])


def _cell(figure: Figure | None) -> str:
    return "" if figure is None else figure.judged()


def goal_lines(summary: Summary) -> list[str]:
    """One line per judged figure: the row, the figure, its value, its goal, met or not."""
    return [f"- {row.label}: {figure.label} = {figure.judged()}" for row, figure in summary.judged()]


def verdict(summary: Summary) -> str:
    judged = summary.judged()
    met = sum(1 for _row, figure in judged if figure.met)
    return f"{met} of {len(judged)} judged figures met their goal" if judged else "no figure has a goal"


def markdown(summary: Summary, run: RunInfo) -> str:
    lines = [f"# {summary.title} ({run.date})", ""]
    if summary.quick:
        lines += [QUICK_BANNER, ""]
    lines += [f"Command: `{run.command}`, took {run.duration_seconds / 60:.1f} min.", ""]
    lines += ["Goals:", "", *(f"- {goal}" for goal in summary.goals), ""] if summary.goals else []
    lines += [table(summary), "", f"**{verdict(summary)}**:", "", *goal_lines(summary), ""]
    if summary.notes:
        lines += ["Notes:", "", *(f"- {note}" for note in summary.notes), ""]
    settings = ", ".join(f"{key} {_setting(value)}" for key, value in summary.settings.items())
    machine = run.machine
    lines += [
        f"- Settings: {settings}.",
        f"- CPUs: {run.cpus_text}.",
        f"- Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['memory_gib']} GiB, "
        f"{machine['platform']}, Python {machine['python']}.",
        "- Versions: " + ", ".join(f"{name} {version}" for name, version in run.versions.items()) + ".",
        f"- Code measured: {run.code_text}.",
    ]
    return "\n".join(lines) + "\n"


def _setting(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def summary_json(summary: Summary, run: RunInfo) -> dict[str, Any]:
    judged = summary.judged()
    return {
        "scenario": summary.scenario,
        "title": summary.title,
        "quick": summary.quick,
        "date": run.date,
        "started": run.started,
        "duration_seconds": round(run.duration_seconds, 1),
        "command": run.command,
        "goals": {
            "stated": summary.goals,
            "judged": len(judged),
            "met": sum(1 for _row, figure in judged if figure.met),
        },
        "rows": [
            {"label": row.label, "figures": {f.key: f.as_json() for f in row.figures}} for row in summary.rows
        ],
        "notes": summary.notes,
        "settings": summary.settings,
        "cpus": run.cpus,
        "machine": run.machine,
        "versions": run.versions,
        "code": run.code,
    }


def save(summary: Summary, run: RunInfo, out_dir: Path) -> list[Path]:
    """Write ``<scenario>.md`` and ``<scenario>.json`` into ``out_dir``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / f"{summary.scenario}.md", out_dir / f"{summary.scenario}.json"
    md.write_text(markdown(summary, run))
    js.write_text(json.dumps(summary_json(summary, run), indent=1, ensure_ascii=False) + "\n")
    return [md, js]


def terminal(summary: Summary) -> str:
    """What is printed when a scenario ends: its table and its judged figures."""
    head = f"== {summary.title}{' (quick run)' if summary.quick else ''} =="
    return "\n".join([head, table(summary), "", f"{verdict(summary)}:", *goal_lines(summary)])
