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
import torch

from replication import __version__, claims, profiles
# Importing the notebooks' experiment modules registers every claim: the report checks each
# notebook's JSON against the whole registry.
from replication import experiments  # noqa: F401
from replication.claims.report import (  # noqa: F401 (the notebooks and tests use them from here)
    CLAIMS_SCHEMA, SCHEMA_VERSION, check_report, claim_entry, content_problems, entry_strings, format_scale,
    load_report, notebook_errors, source_text, validate_report, write_claims_json,
)
from replication.claims import report as claims_report
from replication.engine import runs
from replication.paths import atomic_file
from replication.provenance import cpu_model, git_state, package_version, process_age_s

REPO = Path(__file__).resolve().parents[1]
REPORTS_DIR = REPO / "reports"
REPORT_DIR_ENV = "REPLICATION_REPORT_DIR"

# ---------------------------------------------------------------------------
# The claims JSON: schema, entries, atomic write
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------

def provenance(parameters: Mapping[str, Any], started: float | None = None,
               started_at: str | None = None) -> dict:
    """Where, with what and how long: versions, commit, hardware, parameters.

    ``started`` is a ``time.perf_counter()`` reading; the wall time runs from
    it to now.
    """
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

def verdict_table(entries: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Claim, paper, source, measured, the smallest effect the seeds detect (80% power), scale and
    status as rounded strings, one row a claim.

    No times, paths or versions: nbval compares this table between the
    committed report and a fresh execution.
    """
    rows = [entry_strings(e) for e in entries]
    columns = ["claim", "paper", "source", "measured", "detectable", "scale", "status"]
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
        runs.forget_runs_read()  # the report lists the runs read from here on
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
        if self._written:
            return self._written
        return {**provenance(self.parameters, self._started, self._started_at), "runs": runs.runs_read()}

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
        items["runs"] = claims_report.runs_text(items.get("runs") or {})
        return pd.DataFrame({"value": {k: str(v) for k, v in items.items()}})




# ---------------------------------------------------------------------------
# The index: reports/README.md (claims.report renders it)
# ---------------------------------------------------------------------------

def render_index(reports_dir: Path = REPORTS_DIR) -> str:
    """The text of ``reports/README.md`` for the claims JSONs under ``reports_dir``."""
    return claims_report.render_index(reports_dir)


def write_index(reports_dir: Path = REPORTS_DIR) -> Path:
    """Regenerate ``reports/README.md`` (atomically)."""
    return claims_report.write_index(reports_dir)
