"""Two sets of claims reports side by side, claim by claim: the check a sceptical reader runs.

``python -m replication compare reports/cpu fresh-reports/cpu`` (replication/cli/compare.py) after
retraining a profile into a separate store (``make reproduce PROFILE=cpu STORE=fresh``): for each
claim, its status and its measurement with the 95% interval in each folder, whether the two
intervals overlap, and whether the status is the same. Pure, like the rest of ``claims``: it reads
the claims JSONs with the loader and schema check the index uses (``report.read_report``) and prints with the index's strings (``registry.format_measurement``).

A folder is either a reports folder holding ``<profile>/NN_topic.json`` (``reports/``) or one
profile's folder holding ``NN_topic.json`` directly (``reports/cpu``). When each side holds one
profile, claims are matched by id (so a ``cpu`` folder can be compared with a ``paper`` one);
otherwise by profile and id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from replication.claims.registry import format_measurement
from replication.claims.report import _md, commit_text, format_duration, hardware_text, read_report

SAME, DIFFERS, ONLY_A, ONLY_B = "same status", "differs", "only in A", "only in B"


class CompareError(ValueError):
    """A folder given to compare holds no readable claims reports."""


@dataclass
class ReportSet:
    """The claims reports of one folder: ``reports[(profile, notebook)] = claims JSON``."""

    folder: Path
    reports: dict[tuple[str, str], dict]

    @property
    def profiles(self) -> list[str]:
        return sorted({profile for profile, _ in self.reports})

    def entries(self, by_profile: bool) -> dict[tuple[str, ...], dict]:
        """Every claim entry, keyed by (profile, id) or by (id,)."""
        keyed = {}
        for (profile, _), report in sorted(self.reports.items()):
            for entry in report["claims"]:
                keyed[(profile, entry["id"]) if by_profile else (entry["id"],)] = entry
        return keyed

    def describe(self) -> str:
        """'reports/cpu: profile cpu, 5 notebooks, seeds [0, 1, 2], commit 6e7a140d1f (dirty), AMD EPYC, 2
        threads, 1.2 min': what a reader needs to know about where the numbers came from."""
        provenances = [r["provenance"] for r in self.reports.values()]
        seeds = sorted({str(p["parameters"].get("seeds")) for p in provenances})
        commits = sorted({commit_text(p) for p in provenances})
        hardware = sorted({hardware_text(p) for p in provenances})
        wall = sum(p.get("wall_time_s") or 0.0 for p in provenances)
        profiles = ", ".join(self.profiles)
        return (f"{self.folder}: profile{'s' if len(self.profiles) > 1 else ''} {profiles}, "
                f"{len(self.reports)} notebook{'s' if len(self.reports) != 1 else ''}, seeds {' / '.join(seeds)}, "
                f"commit {' / '.join(commits)}, {' / '.join(hardware)}, {format_duration(wall)} in all")


def read_reports(folder: Path) -> ReportSet:
    """The claims reports in ``folder`` (a reports folder or one profile's folder). Raises
    CompareError naming the folder when it is missing, holds none, or holds one that cannot be
    read or does not follow the claims schema."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CompareError(f"{folder}: no such folder; give a reports folder (reports/, holding <profile>/"
                           "NN_topic.json) or one profile's folder (reports/cpu)")
    paths = sorted(folder.glob("[0-9][0-9]_*.json")) or sorted(folder.glob("*/[0-9][0-9]_*.json"))
    if not paths:
        raise CompareError(f"{folder}: holds no claims reports (NN_topic.json, or <profile>/NN_topic.json); "
                           "`python -m replication reproduce --reports DIR` writes them")
    reports = {}
    for path in paths:
        report, problems = read_report(path)
        if problems:
            raise CompareError(f"{folder}: {path.relative_to(folder)} is not a readable claims report "
                               f"({problems[0]}); re-execute its notebook or remove it")
        reports[(report["profile"], report["notebook"])] = report
    return ReportSet(folder, reports)


# ---------------------------------------------------------------------------
# One claim, two measurements
# ---------------------------------------------------------------------------

def interval(measurement: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """The 95% interval of a measurement; a number without one is the point [value, value]; None
    when there is no measurement or its value is not a number (a shape, a list of names)."""
    if not measurement:
        return None
    if measurement.get("ci95"):
        low, high = measurement["ci95"]
        return float(low), float(high)
    value = measurement.get("value")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), float(value)
    return None


def overlap(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> str | None:
    """'yes' / 'no' whether the two measurements' intervals share a point (values that are not
    numbers: whether they are equal); None when either side has no measurement."""
    if not a or not b:
        return None
    ia, ib = interval(a), interval(b)
    if ia is None or ib is None:
        return "yes" if a.get("value") == b.get("value") else "no"
    return "yes" if ia[0] <= ib[1] and ib[0] <= ia[1] else "no"


@dataclass
class Row:
    key: tuple[str, ...]
    a: dict | None
    b: dict | None

    @property
    def claim(self) -> str:
        return "/".join(self.key)

    @property
    def verdict(self) -> str:
        if self.a is None:
            return ONLY_B
        if self.b is None:
            return ONLY_A
        return SAME if self.a["status"] == self.b["status"] else DIFFERS

    def strings(self) -> dict[str, str]:
        def side(entry: dict | None) -> tuple[str, str]:
            if entry is None:
                return "(absent)", ""
            return entry["status"], format_measurement(entry["measured"], entry["unit"])

        status_a, measured_a = side(self.a)
        status_b, measured_b = side(self.b)
        both = self.a is not None and self.b is not None
        overlaps = overlap(self.a["measured"], self.b["measured"]) if both else None
        return {"claim": self.claim, "status A": status_a, "status B": status_b, "measured A": measured_a,
                "measured B": measured_b, "overlap": overlaps or "—", "verdict": self.verdict}


COLUMNS = {"claim": "claim", "status A": "status in A", "status B": "status in B",
           "measured A": "measured in A [95% interval]", "measured B": "measured in B [95% interval]",
           "overlap": "intervals overlap", "verdict": "same?"}


@dataclass
class Comparison:
    a: ReportSet
    b: ReportSet
    rows: list[Row]

    def counts(self) -> dict[str, int]:
        return {verdict: sum(r.verdict == verdict for r in self.rows) for verdict in (SAME, DIFFERS, ONLY_A, ONLY_B)}

    def summary(self) -> str:
        """'23 claims: 20 same status, 2 differ, 1 only in one folder; intervals overlap for 18 of 22.'"""
        counts = self.counts()
        measured = [r.strings()["overlap"] for r in self.rows]
        judged = [o for o in measured if o != "—"]
        return (f"{len(self.rows)} claims: {counts[SAME]} same status, {counts[DIFFERS]} differ, "
                f"{counts[ONLY_A] + counts[ONLY_B]} only in one folder; intervals overlap for "
                f"{judged.count('yes')} of the {len(judged)} measured in both.")

    def text(self) -> str:
        """A plain-text table for a terminal, the folders first and the summary last."""
        table = [dict(COLUMNS)] + [r.strings() for r in self.rows]
        widths = {c: max(len(row[c]) for row in table) for c in COLUMNS}
        lines = [f"A = {self.a.describe()}", f"B = {self.b.describe()}", ""]
        for index, row in enumerate(table):
            lines.append("  ".join(row[c].ljust(widths[c]) for c in COLUMNS).rstrip())
            if index == 0:
                lines.append("  ".join("-" * widths[c] for c in COLUMNS))
        return "\n".join([*lines, "", self.summary()]) + "\n"

    def markdown(self) -> str:
        """The same as a markdown table, with the folders as a list above it."""
        lines = ["# Claims compared", "", f"- A = {_md(self.a.describe())}", f"- B = {_md(self.b.describe())}", "",
                 "| " + " | ".join(COLUMNS.values()) + " |", "|" + "---|" * len(COLUMNS)]
        for row in self.rows:
            cells = row.strings()
            cells["claim"] = f"`{cells['claim']}`"
            lines.append("| " + " | ".join(_md(cells[c]) for c in COLUMNS) + " |")
        return "\n".join([*lines, "", self.summary(), ""])


def compare(folder_a: Path, folder_b: Path) -> Comparison:
    """Read both folders and pair their claims (see the module docstring for how)."""
    a, b = read_reports(folder_a), read_reports(folder_b)
    by_profile = len(a.profiles) > 1 or len(b.profiles) > 1
    entries_a, entries_b = a.entries(by_profile), b.entries(by_profile)
    keys: Sequence[tuple[str, ...]] = [*entries_a, *(k for k in entries_b if k not in entries_a)]
    return Comparison(a, b, [Row(k, entries_a.get(k), entries_b.get(k)) for k in keys])
