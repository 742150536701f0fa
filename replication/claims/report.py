"""A notebook's claims JSON and the reports index: schema, entries, checks, ``reports/README.md``.

Pure: JSON and text only, no torch, so that a saved report can be validated and judged again
anywhere. A claims JSON holds, for each claim of a notebook, the paper's value, the measurement,
its scale, the rule and the status that rule gives (``registry.verdict``); ``content_problems``
judges a saved one again with today's rules; ``render_index`` tallies the paper's claims, the
package's checks of its own construction, the paper's errata and our variants separately.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from replication.claims.registry import (KINDS, claims_for, format_detectable, format_measurement, get_claim,
                                         recompute_statuses, verdict)
from replication.claims.rules import INCONCLUSIVE, STATUSES, still_improving
from replication.claims.stats import plain
from replication.paths import atomic_write_text

SCHEMA_VERSION = 1
PROFILE_ORDER = ("cpu", "paper", "smoke")  # the index lists the honest replication first

_NULLABLE_NUMBER = {"type": ["number", "null"]}
CLAIMS_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "claims report of one notebook",
    "type": "object",
    "required": ["schema_version", "notebook", "profile", "claims", "figures", "provenance"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "notebook": {"type": "string", "pattern": r"^\d\d_[a-z0-9_]+$"},
        "profile": {"type": "string"},
        "figures": {"type": "array", "items": {"type": "string", "pattern": r"\.png$"}},
        "claims": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "kind", "statement", "paper", "unit", "measured", "scale", "rule", "status",
                             "note"],
                "properties": {
                    "id": {"type": "string"},
                    "kind": {"enum": list(KINDS)},
                    "statement": {"type": "string"},
                    "paper": {
                        "type": "object",
                        "required": ["value", "display", "source"],
                        "properties": {
                            "display": {"type": "string"},
                            "source": {"type": "object", "minProperties": 1,
                                       "propertyNames": {"enum": ["section", "figure", "table", "other"]},
                                       "additionalProperties": {"type": "string"}},
                        },
                    },
                    "unit": {"type": "string"},
                    "measured": {
                        "oneOf": [
                            {"type": "null"},
                            {"type": "object", "required": ["value"], "properties": {
                                "seeds": {"type": "array", "items": {"type": "integer"}},
                                "ci95": {"oneOf": [{"type": "null"}, {
                                    "type": "array", "items": {"type": "number"},
                                    "minItems": 2, "maxItems": 2}]},
                            }},
                        ]
                    },
                    "scale": {
                        "type": "object",
                        "required": ["dataset", "variant", "image_size", "epochs", "precision", "seeds"],
                        "properties": {
                            "dataset": {"type": ["string", "null"]},
                            "variant": {"type": "string"},
                            "image_size": {"type": ["integer", "null"]},
                            "epochs": {"type": ["integer", "null"]},
                            "precision": {"type": ["string", "null"]},
                            "seeds": {"type": "array", "items": {"type": "integer"}},
                        },
                    },
                    "rule": {"type": "object", "required": ["name", "params"],
                             "properties": {"name": {"type": "string"}, "params": {"type": "object"}}},
                    "status": {"enum": list(STATUSES)},
                    "note": {"type": "string"},
                },
            },
        },
        "provenance": {
            "type": "object",
            "required": ["package_version", "git_commit", "git_dirty", "python", "torch", "torchvision",
                         "platform", "cpu", "gpu", "threads", "started_at", "wall_time_s", "parameters"],
            "properties": {
                "package_version": {"type": "string"},
                "git_commit": {"type": ["string", "null"]},
                "git_dirty": {"type": ["boolean", "null"]},
                "threads": {"type": "integer", "minimum": 1},
                "wall_time_s": _NULLABLE_NUMBER,
                "parameters": {"type": "object", "required": ["profile", "seeds"]},
                # the stored runs the report read: {run id: training seconds}
                "runs": {"type": "object", "propertyNames": {"pattern": "^[0-9a-f]{16}$"},
                         "additionalProperties": _NULLABLE_NUMBER},
            },
        },
    },
}


def validate_report(report: Mapping[str, Any]) -> list[str]:
    """Schema problems of a claims JSON (empty when valid)."""
    import jsonschema  # ships with nbformat, i.e. with the notebooks extra

    validator = jsonschema.Draft202012Validator(CLAIMS_SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(report), key=lambda e: list(map(str, e.path)))]


def claim_entry(claim_id: str, measurement: Mapping[str, Any] | None, scale: Mapping[str, Any]) -> dict:
    """One claim of the JSON; the status comes from the claim's rule."""
    claim = get_claim(claim_id)
    missing = [k for k in ("dataset", "variant", "image_size", "epochs", "precision", "seeds") if k not in scale]
    if missing:
        raise ValueError(f"claim {claim_id!r}: scale lacks {', '.join(missing)}")
    return {
        "id": claim.id,
        "kind": claim.kind,
        "statement": claim.statement,
        "paper": {"value": plain(claim.paper_value), "display": claim.paper_display,
                  "source": dict(claim.source)},
        "unit": claim.unit,
        "measured": None if measurement is None else plain(dict(measurement)),
        "scale": plain(dict(scale)),
        "rule": claim.rule_spec(),
        "status": verdict(claim_id, measurement),
        "note": claim.note,
    }


def write_claims_json(path: Path, notebook: str, profile: str, entries: Sequence[Mapping[str, Any]],
                      provenance: Mapping[str, Any], figures: Sequence[str] = ()) -> Path:
    """Write a notebook's claims JSON atomically, after checking it against the schema."""
    report = {"schema_version": SCHEMA_VERSION, "notebook": notebook, "profile": profile,
              "claims": list(entries), "figures": list(figures), "provenance": dict(provenance)}
    problems = validate_report(report)
    if problems:
        raise ValueError(f"claims JSON for {notebook} does not match the schema: " + "; ".join(problems))
    return atomic_write_text(path, json.dumps(report, indent=1, ensure_ascii=False) + "\n")


def load_report(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_report(path: Path) -> tuple[dict | None, list[str]]:
    """A claims JSON and its problems: unreadable or invalid against the schema (empty when fine)."""
    try:
        report = load_report(path)
        return report, validate_report(report)
    except (OSError, ValueError) as error:
        return None, [str(error)]


def format_scale(scale: Mapping[str, Any]) -> str:
    """'paper net, 2 towers, 227 px, no training' / 'cifar10, 32 px, 30 epochs, bf16, 3 seeds'."""
    parts = [p for p in (scale.get("dataset"), scale.get("variant")) if p]
    if scale.get("image_size"):
        parts.append(f"{scale['image_size']} px")
    epochs = scale.get("epochs")
    parts.append("no training" if epochs == 0 else f"{epochs} epochs" if epochs else "")
    if scale.get("precision"):
        parts.append(scale["precision"])
    seeds = scale.get("seeds") or []
    if seeds:
        parts.append(f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}")
    return ", ".join(p for p in parts if p)


def source_text(source: Mapping[str, str]) -> str:
    """'Abstract, Sec. 3.5, Fig. 2' from {"other": "Abstract", "section": "3.5", "figure": "Fig. 2"}."""
    parts = [source.get("other"), f"Sec. {source['section']}" if source.get("section") else None,
             source.get("figure"), source.get("table")]
    return ", ".join(p for p in parts if p)


def entry_strings(entry: Mapping[str, Any]) -> dict[str, str]:
    """The rounded strings of one claim, shared by the verdict table and the index."""
    return {
        "claim": entry["id"],
        "paper": entry["paper"]["display"],
        "source": source_text(entry["paper"]["source"]),
        "measured": format_measurement(entry["measured"], entry["unit"]),
        "detectable": format_detectable(entry["measured"], entry["unit"]),
        "scale": format_scale(entry["scale"]),
        "status": status_text(entry),
    }


def status_text(entry: Mapping[str, Any]) -> str:
    """The status, and which arms were still improving when the gate made it inconclusive."""
    learning = still_improving(entry["measured"])
    if learning and entry["status"] == INCONCLUSIVE:
        return f"{INCONCLUSIVE} (still improving: {', '.join(learning)})"
    return entry["status"]


# ---------------------------------------------------------------------------
# Consistency checks of committed reports (used by the tests and CI)
# ---------------------------------------------------------------------------

def content_problems(report: Mapping[str, Any], folder: Path) -> list[str]:
    """What is wrong with a claims JSON itself, wherever it lies: schema, statuses that
    differ from today's rules, claims other than the notebook's registered ones, figures
    missing from ``folder``. Nothing here depends on the machine that trained."""
    problems = validate_report(report)
    if problems:
        return problems
    problems += recompute_statuses(report)
    registered = [c.id for c in claims_for(report["notebook"])]
    recorded = [e["id"] for e in report["claims"]]
    if recorded != registered:
        problems.append(f"claims {recorded}, registry has {registered}")
    if report["provenance"]["parameters"].get("profile") != report["profile"]:
        problems.append(f"provenance parameters are not profile {report['profile']!r}")
    for figure in report["figures"]:
        if not (Path(folder) / figure).is_file():
            problems.append(f"figure {figure} missing")
    return problems


def check_report(json_path: Path) -> list[str]:
    """Everything wrong with one committed report: schema, statuses that differ
    from today's rules, missing provenance, error outputs or missing files."""
    json_path = Path(json_path)
    try:
        report = load_report(json_path)
    except (OSError, ValueError) as error:
        return [f"{json_path}: unreadable: {error}"]
    problems = [f"{json_path.name}: {p}" for p in content_problems(report, json_path.parent)]
    if validate_report(report):
        return problems  # the checks below read fields the schema guarantees
    if report["notebook"] != json_path.stem or report["profile"] != json_path.parent.name:
        problems.append(f"{json_path.name}: says {report['profile']}/{report['notebook']}, "
                        f"lies in {json_path.parent.name}/")
    notebook = json_path.with_suffix(".ipynb")
    if not notebook.is_file():
        problems.append(f"{json_path.name}: executed notebook {notebook.name} missing")
    else:
        problems += [f"{notebook.name}: {p}" for p in notebook_errors(notebook)]
    return problems


def notebook_errors(path: Path) -> list[str]:
    """Error outputs in an executed notebook."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    found = []
    for index, cell in enumerate(nb.get("cells", [])):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
    return found


# ---------------------------------------------------------------------------
# The index: reports/README.md
# ---------------------------------------------------------------------------

def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _profile_key(profile: str) -> tuple:
    return (PROFILE_ORDER.index(profile) if profile in PROFILE_ORDER else len(PROFILE_ORDER), profile)


def format_duration(seconds: float | None) -> str:
    """'44 s', '12.5 min', '3.2 h' (or '—' when unknown): the index's and `reproduce`'s times."""
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3 * 3600 else f"{seconds / 3600:.1f} h"


def commit_text(provenance: Mapping[str, Any]) -> str:
    """The commit a report was executed at: '6e7a140d1f (dirty)', or 'unknown'."""
    return (provenance.get("git_commit") or "unknown")[:10] + (" (dirty)" if provenance.get("git_dirty") else "")


def hardware_text(provenance: Mapping[str, Any]) -> str:
    """Where a report was executed: 'AMD EPYC, 2 threads' (the GPU when there was one)."""
    return f"{provenance.get('gpu') or provenance.get('cpu') or 'unknown'}, {provenance.get('threads')} threads"


def training_seconds(read: Mapping[str, float | None]) -> float | None:
    """The summed training time of the runs a report read (None when none recorded one)."""
    known = [s for s in read.values() if s is not None]
    return sum(known) if known else None


def runs_text(read: Mapping[str, float | None]) -> str:
    """'3 runs (training 1.2 h): 1cd42c1e37fd7240, ...' for a report's provenance table."""
    if not read:
        return "no stored runs"
    return f"{len(read)} run{'s' if len(read) != 1 else ''} (training {format_duration(training_seconds(read))}): " \
           + ", ".join(read)


TALLY_TITLES = {"claim": ("paper claim", "paper claims"),
                "check": ("check of the package's construction", "checks of the package's construction"),
                "erratum": ("erratum (a misprint of the paper, or a retelling's departure from it)",
                            "errata (misprints of the paper, or a retelling's departures from it)"),
                "variant": ("variant beyond the paper", "variants beyond the paper")}


def tally_lines(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per kind: how many entries of that kind, by status ("12 paper claims: 5 reproduced...")."""
    lines = []
    for kind, (one, many) in TALLY_TITLES.items():
        of_kind = [e for e in entries if e.get("kind", "claim") == kind]
        if not of_kind:
            continue
        title = one if len(of_kind) == 1 else many
        counts = {s: sum(e["status"] == s for e in of_kind) for s in STATUSES}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        lines.append(f"- {len(of_kind)} {title}: {summary}.")
    return lines


def not_yet_reported(reports_dir: Path, reports: Sequence[Mapping[str, Any]]) -> list[str]:
    """The notebooks (``notebooks/NN_topic.ipynb`` beside ``reports_dir``) with no report among ``reports``."""
    notebooks = Path(reports_dir).resolve().parent / "notebooks"
    done = {report["notebook"] for report in reports}
    return [p.stem for p in sorted(notebooks.glob("[0-9][0-9]_*.ipynb")) if p.stem not in done]


def render_index(reports_dir: Path) -> str:
    """The text of ``reports/README.md`` for the claims JSONs under ``reports_dir``."""
    reports_dir = Path(reports_dir)
    by_profile: dict[str, list[dict]] = {}
    broken = []
    for path in sorted(reports_dir.glob("*/*.json")):
        report, problems = read_report(path)
        if problems:
            broken.append(f"- `{path.relative_to(reports_dir)}`: {_md(problems[0])}")
            continue
        by_profile.setdefault(path.parent.name, []).append(report)
    lines = [
        "# Reports",
        "",
        "Generated by `python -m replication reproduce` (`make reproduce`, `make smoke`) from",
        "`reports/<profile>/NN_topic.json`; do not edit by hand. Every status is computed by the",
        "rule registered for the claim (rules in `replication/claims/rules.py`, each claim in its notebook's module in `replication/experiments/`), and `make test` checks that the",
        "committed statuses are what the rules give on the recorded measurements.",
        "",
        "Statuses: *reproduced* (the direction holds with a 95% interval that excludes zero and the",
        "interval overlaps the band of sizes within the stated factor of the paper's, or an exact count",
        "matches), *partly reproduced* (the direction holds, the whole interval lies outside the band),",
        "*not reproduced*, *inconclusive* (the interval spans zero, or too few seeds), *not evaluated*",
        "(not measurable at this scale, or only at unequal budgets). Kinds: *claim* (a sentence of the",
        "paper), *check* (the package's own construction), *erratum* (a misprint of the paper, or a",
        "departure from it in a widely read retelling, measured), *variant* (beyond the paper); each is",
        "tallied on its own.",
        "",
    ]
    if not by_profile:
        lines += ["No reports yet: run `make smoke` or `make reproduce`.", ""]
    for profile in sorted(by_profile, key=_profile_key):
        reports = by_profile[profile]
        entries = [e for r in reports for e in r["claims"]]
        lines += [f"## Profile `{profile}`", "", *tally_lines(entries), ""]
        missing = not_yet_reported(reports_dir, reports)
        if missing:
            lines += [f"Not yet reported at this profile: {', '.join(missing)} (a report is executed and committed "
                      "once every run it reads is in the run store).", ""]
        lines += ["| Claim | Kind | Paper | Measured | Scale | Status | Report |", "|---|---|---|---|---|---|---|"]
        for report in reports:
            link = f"[{report['notebook']}]({profile}/{report['notebook']}.ipynb)"
            for entry in report["claims"]:
                s = entry_strings(entry)
                claim = f"`{entry['id']}` {entry['statement']}"
                paper = f"{s['paper']} ({s['source']})" if s["source"] else s["paper"]
                lines.append(f"| {_md(claim)} | {entry['kind']} | {_md(paper)} | {_md(s['measured'])} "
                             f"| {_md(s['scale'])} | {_md(s['status'])} | {link} |")
        lines.append("")
    if by_profile:
        lines += ["## Time per notebook", "",
                  "Wall time of each notebook's last execution, from its provenance, and the runs it read from the run",
                  "store with the time their training took (a fresh store trains them first; runs shared between",
                  "notebooks count once in the total).", "",
                  "| Profile | Notebook | Wall time | Runs read | Their training | Commit | Hardware |",
                  "|---|---|---|---|---|---|---|"]
        for profile in sorted(by_profile, key=_profile_key):
            total, every_run, recorded = 0.0, {}, False
            for report in by_profile[profile]:
                prov = report["provenance"]
                total += prov.get("wall_time_s") or 0.0
                read = prov.get("runs")
                every_run.update(read or {})
                recorded = recorded or read is not None
                count = "not recorded" if read is None else str(len(read))
                training = format_duration(training_seconds(read or {}))
                lines.append(f"| {profile} | {report['notebook']} | {format_duration(prov.get('wall_time_s'))} "
                             f"| {count} | {training} | {_md(commit_text(prov))} | {_md(hardware_text(prov))} |")
            count = f"**{len(every_run)}**" if recorded else "not recorded"
            lines.append(f"| {profile} | **total** | **{format_duration(total)}** | {count} "
                         f"| **{format_duration(training_seconds(every_run))}** | | |")
        lines.append("")
    if broken:
        lines += ["## Reports left out", "", "These files do not match the claims schema:", "", *broken, ""]
    return "\n".join(lines)


def write_index(reports_dir: Path) -> Path:
    """Regenerate ``reports/README.md`` (atomically)."""
    return atomic_write_text(Path(reports_dir) / "README.md", render_index(reports_dir))
