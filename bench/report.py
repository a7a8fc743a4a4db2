"""The results of one benchmark run, as JSON and as a markdown table.

A run holds stages; a stage holds figures (a measured value, each beside one or more
baselines with the ratio measured / baseline), checks (counts that must hold, such as records
lost) and a status (``measured`` or ``not available`` with the reason). Targets say what was
aimed at, what was measured, whether it was met and by how much it was missed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Baseline:
    label: str
    value: float
    samples: list[float] = field(default_factory=list)
    ratio: float = 0.0  # the figure's value / this value

    def __post_init__(self) -> None:
        self.value = float(self.value)


@dataclass
class Figure:
    id: str
    label: str
    unit: str
    value: float
    better: str  # "higher" or "lower"
    samples: list[float] = field(default_factory=list)
    baselines: list[Baseline] = field(default_factory=list)

    def beside(self, label: str, value: float, samples: list[float] | None = None) -> Figure:
        """Add a baseline; the ratio is this figure's value over the baseline's."""
        self.baselines.append(
            Baseline(label, value, samples or [], self.value / value if value else 0.0)
        )
        return self


@dataclass
class Target:
    id: str
    label: str
    goal: str  # e.g. "<= 1.5"
    measured: float
    unit: str
    limit: float
    better: str  # "higher": met when measured >= limit; "lower": met when measured <= limit

    @property
    def met(self) -> bool:
        if self.better == "higher":
            return self.measured >= self.limit
        return self.measured <= self.limit

    @property
    def miss(self) -> str:
        """By how much the target was missed ("" when met)."""
        if self.met:
            return ""
        gap = abs(self.measured - self.limit)
        pct = gap / self.limit * 100 if self.limit else 0.0
        side = "short" if self.better == "higher" else "over"
        if self.unit == "%":
            return f"{gap:.1f} percentage points {side}"
        share = f" ({pct:.0f}%)" if self.limit else ""
        return f"{_with_unit(gap, self.unit)}{share} {side}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met, "missed_by": self.miss}


@dataclass
class Stage:
    id: str
    title: str
    status: str = "measured"  # or "not available"
    note: str = ""
    figures: list[Figure] = field(default_factory=list)
    checks: dict[str, int | float | str] = field(default_factory=dict)


@dataclass
class Results:
    mode: str
    started_at: str
    machine: dict[str, Any]
    versions: dict[str, str]
    sizes: dict[str, Any]
    source: dict[str, Any] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    finished_at: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = [t.to_json() for t in self.targets]
        return data

    def write(self, out_dir: Path, name: str = "latest") -> tuple[Path, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path = out_dir / f"{name}.json"
        md_path = out_dir / f"{name}.md"
        json_path.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n")
        md_path.write_text(to_markdown(self))
        return json_path, md_path


def _num(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _with_unit(value: float, unit: str) -> str:
    return f"{_num(value)}{unit}" if unit in ("×", "%") else f"{_num(value)} {unit}"


def _ratio(ratio: float) -> str:
    return f"{ratio:.2f}×"


def to_markdown(results: Results) -> str:
    m = results.machine
    lines = [
        f"# movie-lake benchmark ({results.mode})",
        "",
        f"Run {results.started_at} → {results.finished_at} ({results.seconds:.0f} s). "
        f"Machine: {m.get('cores')} cores, {m.get('memory_gib')} GiB memory, {m.get('cpu', '?')}; "
        f"load average at start {m.get('load_average_at_start')}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results.versions.items()) + ".",
        "",
        "Sizes: " + ", ".join(f"{k} {v}" for k, v in results.sizes.items()) + ".",
        "",
        f"Code: commit {results.source.get('commit', '?')}"
        + (
            " with uncommitted changes in " + ", ".join(results.source["uncommitted"])
            if results.source.get("uncommitted")
            else ", no uncommitted changes"
        )
        + ".",
        "",
        "Each value is the median of the repetitions listed in `latest.json`; the ratio is "
        "measured ÷ baseline (see bench/README.md for how to read it).",
        "",
        "## Targets",
        "",
        "| target | goal | measured | met | missed by |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in results.targets:
        lines.append(
            f"| {t.label} | {t.goal} | {_with_unit(t.measured, t.unit)} | "
            f"{'yes' if t.met else '**no**'} | {t.miss or '—'} |"
        )
    if not results.targets:
        lines.append("| (no stage with a target was measured) | | | | |")
    for stage in results.stages:
        lines += ["", f"## {stage.title}", ""]
        if stage.status != "measured":
            lines.append(f"**{stage.status}**: {stage.note}")
            continue
        if stage.note:
            lines += [stage.note, ""]
        lines += [
            "| figure | measured | baseline | baseline value | ratio |",
            "| --- | --- | --- | --- | --- |",
        ]
        for fig in stage.figures:
            measured = _with_unit(fig.value, fig.unit)
            if not fig.baselines:
                lines.append(f"| {fig.label} | {measured} | — | — | — |")
            for i, base in enumerate(fig.baselines):
                lines.append(
                    f"| {fig.label if i == 0 else ''} | {measured if i == 0 else ''} | "
                    f"{base.label} | {_with_unit(base.value, fig.unit)} | {_ratio(base.ratio)} |"
                )
        if stage.checks:
            lines += ["", "Checks: " + ", ".join(f"{k} = {v}" for k, v in stage.checks.items())]
    return "\n".join(lines) + "\n"
