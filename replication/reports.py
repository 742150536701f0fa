"""Reports: the claims JSON, its provenance, the verdict table, figures, the index.

The last step of DESIGN.md's "flow of one claim". A notebook keeps one
:class:`NotebookReport`; it records each claim's measurement (the status is
computed by the claim's rule in :mod:`replication.claims`), saves figures as
PNG, and finally writes ``<notebook>.json`` and shows the verdict table, a
table of rounded strings with no times or paths in it, which is the cell
nbval compares when CI re-executes a report.

Where files go: the folder named by ``REPLICATION_REPORT_DIR`` when set
(``python -m replication reproduce`` points it at a staging folder and moves
the results into ``reports/<profile>/`` only when the notebook succeeds), else
``build/reports/<profile>/``, so that running a notebook by hand, or nbval
re-executing a committed report, never rewrites ``reports/``.

``write_index`` renders ``reports/README.md``: one row per claim across the
notebooks of each profile, and the wall time of every notebook.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from replication import __version__, claims, profiles
# Importing the notebooks' experiment modules registers every claim: the report checks each
# notebook's JSON against the whole registry.
from replication import experiments  # noqa: F401
from replication.paths import atomic_file, atomic_write_text
from replication.provenance import cpu_model, git_state, package_version, process_age_s

REPO = Path(__file__).resolve().parents[1]
REPORTS_DIR = REPO / "reports"
SCHEMA_VERSION = 1
REPORT_DIR_ENV = "REPLICATION_REPORT_DIR"
PROFILE_ORDER = ("cpu", "paper", "smoke")  # the index lists the honest replication first

# ---------------------------------------------------------------------------
# The claims JSON: schema, entries, atomic write
# ---------------------------------------------------------------------------

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
                "required": ["id", "statement", "paper", "unit", "measured", "scale", "rule", "status", "note"],
                "properties": {
                    "id": {"type": "string"},
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
                    "status": {"enum": list(claims.STATUSES)},
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
    claim = claims.get_claim(claim_id)
    missing = [k for k in ("dataset", "variant", "image_size", "epochs", "precision", "seeds") if k not in scale]
    if missing:
        raise ValueError(f"claim {claim_id!r}: scale lacks {', '.join(missing)}")
    return {
        "id": claim.id,
        "statement": claim.statement,
        "paper": {"value": claims.plain(claim.paper_value), "display": claim.paper_display,
                  "source": dict(claim.source)},
        "unit": claim.unit,
        "measured": None if measurement is None else claims.plain(dict(measurement)),
        "scale": claims.plain(dict(scale)),
        "rule": claim.rule_spec(),
        "status": claims.verdict(claim_id, measurement),
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


# ---------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------

def provenance(parameters: Mapping[str, Any], started: float | None = None,
               started_at: str | None = None) -> dict:
    """Where, with what and how long: versions, commit, hardware, parameters.

    ``started`` is a ``time.perf_counter()`` reading; the wall time runs from
    it to now.
    """
    import torch

    commit, dirty = git_state()
    gpu = None
    if torch.cuda.is_available():
        gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return {
        "package_version": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": package_version("torchvision"),
        "numpy": package_version("numpy"),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "gpu": gpu,
        "threads": torch.get_num_threads(),
        "cpu_kernels": f"{profiles.cpu_kernels()}, {torch.backends.cpu.get_cpu_capability()}",
        "started_at": started_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": None if started is None else round(time.perf_counter() - started, 1),
        "parameters": claims.plain(dict(parameters)),
    }


# ---------------------------------------------------------------------------
# Display: the verdict table (what nbval compares)
# ---------------------------------------------------------------------------

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
        "measured": claims.format_measurement(entry["measured"], entry["unit"]),
        "scale": format_scale(entry["scale"]),
        "status": entry["status"],
    }


def verdict_table(entries: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Claim, paper, source, measured, scale and status as rounded strings, one row a claim.

    No times, paths or versions: nbval compares this table between the
    committed report and a fresh execution.
    """
    rows = [entry_strings(e) for e in entries]
    columns = ["claim", "paper", "source", "measured", "scale", "status"]
    return pd.DataFrame(rows, columns=columns).set_index("claim")


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------

def save_png(fig, path: Path) -> Path:
    """Save a figure as PNG atomically, without the version stamp matplotlib writes."""
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None}, bbox_inches="tight")
    return Path(path)


def _shape_text(shape: Sequence[int]) -> str:
    shape = [*shape[1:], shape[0]] if len(shape) == 3 else list(shape)
    return "×".join(str(int(s)) for s in shape)


def plot_two_towers(rows: Sequence[Mapping[str, Any]], input_label: str | None = None):
    """Fig. 2's two-tower connectivity, drawn from ``models.layer_table`` rows.

    One box per layer and tower (the maps that tower, i.e. one GPU, holds);
    grey arrows stay within a tower, red arrows cross between towers: the
    only places the paper's two GPUs communicate (Section 3.2).
    """
    layers = [r for r in rows if r["kind"] in ("conv", "local", "fc")]
    if not layers or layers[0].get("per_tower") is None:
        raise ValueError("plot_two_towers needs the layer table of a two-tower net (towers=2)")
    source = next(r for r in rows if r["kind"] == "input")
    fig, ax = plt.subplots(figsize=(12, 3.6))
    plt.close(fig)  # shown once, by the notebook's display of the returned figure
    box_w, box_h, ys = 0.78, 0.62, (1.0, 0.0)
    ax.add_patch(plt.Rectangle((-box_w / 2, 0.5 - box_h / 2), box_w, box_h, fc="#eeeeee", ec="black"))
    ax.text(0, 0.5, "input\n" + (input_label or _shape_text(source["output_shape"])), ha="center",
            va="center", fontsize=8)
    arrow = dict(arrowstyle="-|>", lw=1.0, shrinkA=0, shrinkB=0)
    for i, row in enumerate(layers, start=1):
        ax.text(i, 1.0 + box_h / 2 + 0.08, row["layer"], ha="center", va="bottom", fontsize=9, weight="bold")
        for t, y in enumerate(ys):
            tower = row["per_tower"][t]
            ax.add_patch(plt.Rectangle((i - box_w / 2, y - box_h / 2), box_w, box_h,
                                       fc=("#dbe8f6" if t == 0 else "#f6e5d0"), ec="black"))
            ax.text(i, y + 0.08, _shape_text(tower["output_shape"]), ha="center", va="center", fontsize=8)
            ax.text(i, y - 0.14, f"{tower['params'] / 1e6:.2f}M params", ha="center", va="center",
                    fontsize=6.5, color="#444444")
            start = i - 1 + box_w / 2
            if i == 1:
                ax.annotate("", (i - box_w / 2, y), (start, 0.5), arrowprops={**arrow, "color": "grey"})
                continue
            ax.annotate("", (i - box_w / 2, y), (start, y), arrowprops={**arrow, "color": "grey"})
            if row["inputs_from"] == "both towers":
                ax.annotate("", (i - box_w / 2, y + (0.12 if y == 1.0 else -0.12)), (start, ys[1 - t]),
                            arrowprops={**arrow, "color": "#c0392b", "lw": 1.3})
    ax.text(-0.45, 1.0, "tower 1\n(GPU 1)", ha="right", va="center", fontsize=8)
    ax.text(-0.45, 0.0, "tower 2\n(GPU 2)", ha="right", va="center", fontsize=8)
    ax.plot([], [], color="grey", label="within a tower")
    ax.plot([], [], color="#c0392b", label="across towers (the GPUs exchange activations)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False, fontsize=8)
    ax.set_xlim(-1.2, len(layers) + 0.5)
    ax.set_ylim(-0.5, 1.55)
    ax.axis("off")
    crossing = [r["layer"] for r in layers if r["inputs_from"] == "both towers"]
    ax.set_title(f"Two towers (Sec. 3.2, Fig. 2): cross-tower connections only into {', '.join(crossing)}",
                 fontsize=10)
    return fig


def fig2_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Our layer table (``models.layer_table``) beside Fig. 2 / Section 3.5, as strings."""
    layers = [r for r in rows if r["kind"] in ("conv", "local", "fc")]
    records = []
    for row, paper_shape, paper_neurons in zip(layers, claims.FIG2_OUTPUT_SHAPES, claims.FIG2_NEURONS):
        records.append({
            "layer": row["layer"],
            "kernels": row["kernel"],
            "inputs from": row["inputs_from"],
            "output": _shape_text(row["output_shape"]),
            "Fig. 2 output": "×".join(map(str, paper_shape)),
            "neurons": f"{row['neurons']:,}",
            "Sec. 3.5 neurons": f"{paper_neurons:,}",
            "agree": "yes" if row["neurons"] == paper_neurons else "no",
            "parameters": f"{row['params']:,}",
        })
    total = sum(r["params"] for r in layers)
    hidden = sum(r["neurons"] for r in layers if r["hidden"])
    records.append({"layer": "total", "kernels": "", "inputs from": "", "output": "", "Fig. 2 output": "",
                    "neurons": f"{hidden:,} (conv1–fc7)",
                    "Sec. 3.5 neurons": f"{sum(claims.FIG2_NEURONS[:-1]):,} (conv1–fc7)",
                    "agree": "", "parameters": f"{total:,}"})
    return pd.DataFrame(records).set_index("layer")


def rows_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A list of dicts as a table of strings (lists as 55×55×96)."""
    def text(value: Any) -> str:
        return "×".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)

    return pd.DataFrame([{k: text(v) for k, v in row.items()} for row in rows])


# ---------------------------------------------------------------------------
# One notebook's report
# ---------------------------------------------------------------------------

def report_dir(profile: str) -> Path:
    """Where a notebook writes its JSON and figures (see the module docstring)."""
    override = os.environ.get(REPORT_DIR_ENV)
    return Path(override) if override else REPO / "build" / "reports" / profile


def configure_display() -> None:
    """Show whole tables and whole strings (the verdicts are short sentences), the same
    way in a kernel and in a test, so the text nbval compares does not depend on a terminal."""
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_columns", None)
    pd.set_option("display.max_rows", 200)
    pd.set_option("display.width", 250)


class NotebookReport:
    """The report of one notebook run: claims, figures, provenance.

    ``NotebookReport("01_architecture", params)`` right after the parameters
    are validated; ``record`` each measured claim; ``save_figure``; at the end
    ``write()`` and show ``verdict_table()``. Claims of the notebook that were
    never recorded are written as "not evaluated".
    """

    def __init__(self, notebook: str, parameters: Mapping[str, Any], output_dir: Path | None = None):
        self.notebook = notebook
        self.parameters = dict(parameters)
        self.profile = self.parameters["profile"]
        self.output_dir = Path(output_dir) if output_dir else report_dir(self.profile)
        # the wall time counts from the kernel's start (imports included), where known
        age = process_age_s() or 0.0
        self._started = time.perf_counter() - age
        self._started_at = datetime.fromtimestamp(time.time() - age, timezone.utc).isoformat(timespec="seconds")
        self.entries: dict[str, dict] = {}
        self.figures: list[str] = []
        self._written: dict | None = None
        if not claims.claims_for(notebook):
            raise ValueError(f"no claims registered for notebook {notebook!r} in replication.claims")
        configure_display()

    # -- claims ----------------------------------------------------------------
    def record(self, claim_id: str, measurement: Mapping[str, Any] | None, scale: Mapping[str, Any]) -> str:
        """Record one claim's measurement; returns the status its rule gives."""
        if claims.get_claim(claim_id).notebook != self.notebook:
            raise ValueError(f"claim {claim_id!r} belongs to {claims.get_claim(claim_id).notebook}, "
                             f"not {self.notebook}")
        self.entries[claim_id] = claim_entry(claim_id, measurement, scale)
        return self.entries[claim_id]["status"]

    def record_all(self, measured: Mapping[str, Mapping[str, Any]]) -> None:
        """Record ``{claim_id: {"measurement": ..., "scale": ...}}`` (what each notebook's ``measure`` returns)."""
        for claim_id, item in measured.items():
            self.record(claim_id, item["measurement"], item["scale"])

    def _all_entries(self) -> list[dict]:
        """Every claim of the notebook in registry order; unrecorded ones not evaluated."""
        unevaluated_scale = {"dataset": None, "variant": "not run", "image_size": None,
                             "epochs": self.parameters.get("epochs"),
                             "precision": self.parameters.get("precision"),
                             "seeds": list(self.parameters.get("seeds") or [])}
        return [self.entries.get(c.id) or claim_entry(c.id, None, unevaluated_scale)
                for c in claims.claims_for(self.notebook)]

    def verdict_table(self, claim_ids: Iterable[str] | None = None) -> pd.DataFrame:
        entries = self._all_entries()
        if claim_ids is not None:
            wanted = list(claim_ids)
            entries = [e for e in entries if e["id"] in wanted]
        return verdict_table(entries)

    # -- figures ---------------------------------------------------------------
    def save_figure(self, fig, name: str):
        """Save ``fig`` as ``<notebook>_<name>.png`` beside the JSON; returns the figure."""
        filename = f"{self.notebook}_{name}.png"
        save_png(fig, self.output_dir / filename)
        if filename not in self.figures:
            self.figures.append(filename)
        return fig

    # -- output ----------------------------------------------------------------
    def provenance(self) -> dict:
        """The provenance written by ``write()``, or as of now before that."""
        return self._written or provenance(self.parameters, self._started, self._started_at)

    def write(self) -> Path:
        """Write ``<notebook>.json`` (atomically) into the report folder."""
        self._written = None
        self._written = self.provenance()
        return write_claims_json(self.output_dir / f"{self.notebook}.json", self.notebook, self.profile,
                                 self._all_entries(), self._written, self.figures)

    def check(self) -> pd.DataFrame:
        """What must hold on every machine, as a table nbval can compare exactly in every
        profile: the JSON that ``write()`` wrote is valid, each status is what the claim's
        rule gives for its measurement, the notebook's registered claims are all there (one
        row each in the verdict table), and its figures exist. No measured digits: those
        depend on the CPU's kernels when a report trains (see README, "What CI checks")."""
        if self._written is None:
            raise RuntimeError("call report.write() before report.check()")
        path = self.output_dir / f"{self.notebook}.json"
        report = load_report(path)
        schema = validate_report(report)
        statuses = schema or claims.recompute_statuses(report)
        registered = [c.id for c in claims.claims_for(self.notebook)]
        recorded = [e["id"] for e in report["claims"]] if not schema else []
        rows = len(self.verdict_table())
        missing = [f for f in report.get("figures", []) if not (self.output_dir / f).is_file()]

        def verdict(problems: list[str]) -> str:
            return "ok" if not problems else "; ".join(problems)

        checks = {
            f"{self.notebook}.json follows the claims schema": verdict(schema),
            "every status is what its claim's rule gives": verdict(statuses),
            f"the {len(registered)} registered claims are recorded, in order":
                verdict([] if recorded == registered else [f"recorded {recorded}"]),
            f"the verdict table has a row per claim ({len(registered)})":
                verdict([] if rows == len(registered) else [f"{rows} rows"]),
            f"the {len(report.get('figures', []))} figures exist": verdict([f"missing {m}" for m in missing]),
        }
        return pd.DataFrame({"check": list(checks), "result": list(checks.values())}).set_index("check")

    def provenance_table(self) -> pd.DataFrame:
        """Provenance as a two-column table (varies between runs: not for nbval)."""
        items = dict(self.provenance())
        items["parameters"] = json.dumps(items["parameters"])
        return pd.DataFrame({"value": {k: str(v) for k, v in items.items()}})


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
    problems += claims.recompute_statuses(report)
    registered = [c.id for c in claims.claims_for(report["notebook"])]
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


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def render_index(reports_dir: Path = REPORTS_DIR) -> str:
    """The text of ``reports/README.md`` for the claims JSONs under ``reports_dir``."""
    reports_dir = Path(reports_dir)
    by_profile: dict[str, list[dict]] = {}
    broken = []
    for path in sorted(reports_dir.glob("*/*.json")):
        try:
            report = load_report(path)
            problems = validate_report(report)
        except (OSError, ValueError) as error:
            problems = [str(error)]
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
        "Statuses: *reproduced* (direction holds with a 95% interval that excludes zero and the size",
        "is within the stated factor of the paper's, or an exact count matches), *partly reproduced*",
        "(direction only), *not reproduced*, *inconclusive* (the interval spans zero, or too few seeds),",
        "*not evaluated* (not measurable at this scale).",
        "",
    ]
    if not by_profile:
        lines += ["No reports yet: run `make smoke` or `make reproduce`.", ""]
    for profile in sorted(by_profile, key=_profile_key):
        reports = by_profile[profile]
        entries = [e for r in reports for e in r["claims"]]
        counts = {s: sum(e["status"] == s for e in entries) for s in claims.STATUSES}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        lines += [f"## Profile `{profile}`", "", f"{len(entries)} claims: {summary}.", "",
                  "| Claim | Paper | Measured | Scale | Status | Report |",
                  "|---|---|---|---|---|---|"]
        for report in reports:
            link = f"[{report['notebook']}]({profile}/{report['notebook']}.ipynb)"
            for entry in report["claims"]:
                s = entry_strings(entry)
                claim = f"`{entry['id']}` {entry['statement']}"
                paper = f"{s['paper']} ({s['source']})" if s["source"] else s["paper"]
                lines.append(f"| {_md(claim)} | {_md(paper)} | {_md(s['measured'])} | {_md(s['scale'])} "
                             f"| {_md(s['status'])} | {link} |")
        lines.append("")
    if by_profile:
        lines += ["## Time per notebook", "",
                  "Wall time of each notebook's last execution, from its provenance.", "",
                  "| Profile | Notebook | Wall time | Commit | Hardware |", "|---|---|---|---|---|"]
        for profile in sorted(by_profile, key=_profile_key):
            total = 0.0
            for report in by_profile[profile]:
                prov = report["provenance"]
                total += prov.get("wall_time_s") or 0.0
                commit = (prov.get("git_commit") or "unknown")[:10] + (" (dirty)" if prov.get("git_dirty") else "")
                hardware = prov.get("gpu") or prov.get("cpu") or "unknown"
                hardware += f", {prov.get('threads')} threads"
                lines.append(f"| {profile} | {report['notebook']} | {_minutes(prov.get('wall_time_s'))} "
                             f"| {_md(commit)} | {_md(hardware)} |")
            lines.append(f"| {profile} | **total** | **{_minutes(total)}** | | |")
        lines.append("")
    if broken:
        lines += ["## Reports left out", "", "These files do not match the claims schema:", "", *broken, ""]
    return "\n".join(lines)


def write_index(reports_dir: Path = REPORTS_DIR) -> Path:
    """Regenerate ``reports/README.md`` (atomically)."""
    return atomic_write_text(Path(reports_dir) / "README.md", render_index(reports_dir))
