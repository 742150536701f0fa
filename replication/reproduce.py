"""Executing the claim notebooks (papermill) into reports/<profile>/, then rebuilding the index.

Choosing the notebooks and their profile's parameters, checking the kernel, running
each notebook in a staging folder under build/ and publishing it only when every cell
succeeds (a failed one is kept under build/failed/). The command line,
`python -m replication reproduce`, is replication/cli/reproduce.py.

A re-run aside (the check a sceptical reader runs, then ``python -m replication compare``):
``reports_dir`` elsewhere than reports/ leaves the committed reports and their index untouched,
and ``store`` points the kernels' run store (and checkpoint cache) at another folder, so that
every run the notebooks need is trained again there instead of read from, or added to, runs/.
Before each notebook it says how long the last run took, from the committed report's provenance.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from replication import profiles
from replication.paths import partial_name, remove_stale_partials

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO / "notebooks"
REPORTS_DIR = REPO / "reports"
BUILD_DIR = REPO / "build"
KERNEL_NAME = "python3"
REPORT_DIR_ENV = "REPLICATION_REPORT_DIR"  # = replication.reports.REPORT_DIR_ENV (not imported: it loads torch)
STORE_ENV, CACHE_ENV = "REPLICATION_STORE", "REPLICATION_CACHE"  # read by replication.paths in the kernel


@dataclass
class Outcome:
    notebook: str
    ok: bool
    seconds: float
    message: str


# ---------------------------------------------------------------------------
# Which notebooks, with which parameters, on which kernel
# ---------------------------------------------------------------------------

def find_notebooks(only: Sequence[str] | None = None, notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """notebooks/NN_topic.ipynb in order; ``only`` selects by number ("01") or name."""
    available = sorted(p for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))
    if not only:
        return available
    chosen, unknown = [], []
    for wanted in only:
        stem = Path(wanted).stem
        matches = [p for p in available if p.stem == stem or p.stem.split("_", 1)[0] == stem]
        if matches:
            chosen += [m for m in matches if m not in chosen]
        else:
            unknown.append(wanted)
    if unknown:
        names = ", ".join(p.stem for p in available) or "(none)"
        raise profiles.ParameterError(f"--only: no notebook {', '.join(map(repr, unknown))}; notebooks: {names}")
    return sorted(chosen)


def parameters_for(profile: str, overrides: Sequence[tuple[str, str]] = (),
                   profiles_dir: Path | None = None) -> dict[str, Any]:
    """The profile's parameters (what `papermill -f profiles/<profile>.yaml` passes), with
    ``-p NAME VALUE`` overrides parsed as YAML, validated before any kernel starts."""
    params = profiles.load_profile(profile, profiles_dir)
    for name, text in overrides:
        if name not in profiles.PARAMETERS:
            raise profiles.ParameterError(
                f"parameter {name!r}: unknown; parameters are {', '.join(profiles.PARAMETERS)}")
        if name == "profile":
            raise profiles.ParameterError("parameter 'profile': choose it with --profile")
        try:
            params[name] = yaml.safe_load(text)
        except yaml.YAMLError as error:
            first = str(error).strip().splitlines()[0]
            raise profiles.ParameterError(f"parameter {name!r}: {text!r} is not a YAML value ({first}); "
                                          "e.g. -p seeds '[0, 1, 2]'") from None
    profiles.validate_parameters(**params, profiles_dir=profiles_dir)
    return params


def kernel_problem() -> str | None:
    """Why the ``python3`` kernel would not run this interpreter, or None.

    jupyter_client runs a kernelspec whose argv starts with plain ``python``
    (ipykernel's native spec, installed in the venv's share/jupyter) with the
    interpreter that launches it, i.e. this one.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel  # lazily: the optional notebooks extra

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        return (f"no {KERNEL_NAME!r} kernel; install this environment's with "
                f"`{sys.executable} -m ipykernel install --sys-prefix`")
    program = spec.argv[0]
    if program in {"python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"}:
        return None
    if os.path.abspath(program) == os.path.abspath(sys.executable):
        return None
    return (f"the {KERNEL_NAME!r} kernel ({spec.resource_dir}) runs {program}, not {sys.executable}; "
            f"reinstall it with `{sys.executable} -m ipykernel install --sys-prefix`")


# ---------------------------------------------------------------------------
# Executing one notebook
# ---------------------------------------------------------------------------

def _first_line(source: str) -> str:
    lines = [ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return (lines[0][:70] + ("…" if len(lines[0]) > 70 else "")) if lines else ""


def _publish(staging: Path, stem: str, target: Path) -> None:
    """Move the notebook's files from staging into the report folder, dropping
    figures of the previous run that this run no longer makes."""
    target.mkdir(parents=True, exist_ok=True)
    produced = {p.name for p in staging.iterdir() if p.is_file() and p.name.startswith(stem)}
    for old in target.glob(f"{stem}_*.png"):
        if old.name not in produced:
            old.unlink()
    # the notebook last: a report is complete once its .ipynb is in place
    for name in sorted(produced, key=lambda n: n.endswith(".ipynb")):
        shutil.move(str(staging / name), str(target / name))


def execute(notebook: Path, profile: str, parameters: dict[str, Any], reports_dir: Path = REPORTS_DIR,
            build_dir: Path = BUILD_DIR, cell_timeout: int | None = None,
            environment: Mapping[str, str] | None = None) -> Outcome:
    """Run one notebook with papermill into a staging folder; publish it only on success.
    ``environment``: variables the kernel gets besides the staging folder (``store_environment``)."""
    import papermill  # lazily: the optional notebooks extra, and seconds of start-up
    from papermill.exceptions import PapermillExecutionError

    stem = notebook.stem
    staging = partial_name(build_dir / "staging" / f"{profile}-{stem}")  # carries this process's pid
    remove_stale_partials(staging.parent)  # folders of a reproduce that was killed
    staging.mkdir(parents=True)
    output = staging / f"{stem}.ipynb"
    # The kernel inherits this: JSON and figures go to staging.
    overrides = {**(environment or {}), REPORT_DIR_ENV: str(staging)}
    previous = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=parameters, kernel_name=KERNEL_NAME,
            progress_bar=False, log_output=False, cwd=str(staging), execution_timeout=cell_timeout,
        )
    except PapermillExecutionError as error:
        failed = _keep_failed(output, build_dir / "failed" / profile)
        message = (f"{stem}: cell {error.cell_index} (In [{error.exec_count}]: {_first_line(error.source)}) "
                   f"raised {error.ename}: {error.evalue}" + (f"; executed notebook kept at {failed}" if failed else ""))
        return Outcome(stem, False, time.perf_counter() - start, message)
    except Exception as error:  # kernel died, timeout, unreadable notebook...
        failed = _keep_failed(output, build_dir / "failed" / profile)
        message = (f"{stem}: {type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}"
                   + (f"; executed notebook kept at {failed}" if failed else ""))
        return Outcome(stem, False, time.perf_counter() - start, message)
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    seconds = time.perf_counter() - start
    if not (staging / f"{stem}.json").is_file():
        shutil.rmtree(staging, ignore_errors=True)
        return Outcome(stem, False, seconds, f"{stem}: ran, but wrote no {stem}.json (no `report.write()` cell?)")
    if profile in profiles.RETRAINED_PROFILES:
        mark_portable_cells_only(output)
    _publish(staging, stem, Path(reports_dir) / profile)
    shutil.rmtree(staging, ignore_errors=True)
    return Outcome(stem, True, seconds, _summary(Path(reports_dir) / profile / f"{stem}.json"))


def mark_portable_cells_only(path: Path) -> int:
    """Tag every code cell of an executed notebook ``nbval-ignore-output`` except the
    ``portable`` ones (and those that say what nbval should do in a comment); returns how
    many were tagged. For reports that train again when re-executed: nbval then checks
    that each of their cells runs, and compares only what holds on every CPU."""
    import nbformat  # lazily: the optional notebooks extra

    notebook = nbformat.read(str(path), as_version=4)
    tagged = 0
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code" or profiles.PORTABLE_TAG in tags or "NBVAL_" in cell.source:
            continue
        if "nbval-ignore-output" not in tags:
            cell.metadata["tags"] = [*tags, "nbval-ignore-output"]
            tagged += 1
    nbformat.write(notebook, str(path))
    return tagged


def _keep_failed(output: Path, folder: Path) -> Path | None:
    if not output.is_file():
        shutil.rmtree(output.parent, ignore_errors=True)
        return None
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / output.name
    shutil.move(str(output), str(kept))
    shutil.rmtree(output.parent, ignore_errors=True)
    return kept


def _summary(json_path: Path) -> str:
    entries = json.loads(json_path.read_text())["claims"]
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items())


# ---------------------------------------------------------------------------
# A re-run aside, and the time each notebook took last
# ---------------------------------------------------------------------------

def store_environment(store: Path) -> dict[str, str]:
    """The kernel's settings for a run store of its own: ``REPLICATION_STORE=<store>`` and the
    checkpoint cache ``REPLICATION_CACHE=<store>/.cache``. The cache moves too: it holds the
    checkpoint of every run trained here, last epoch included, and a run "trained" into an empty
    store would otherwise resume from that final checkpoint and retrain nothing. Absolute paths:
    the kernel runs in the staging folder."""
    store = Path(store).expanduser().resolve()
    return {STORE_ENV: str(store), CACHE_ENV: str(store / ".cache")}


def default_reports_for(store: Path) -> Path:
    """Where a re-run into ``store`` writes its reports unless told: ``<store>-reports`` beside it
    (``fresh`` -> ``fresh-reports``), never the committed reports/."""
    store = Path(store).expanduser()
    return store.with_name(store.name + "-reports")


def last_run(committed_dir: Path, profile: str, notebook: str) -> dict | None:
    """The provenance of the notebook's report in ``committed_dir/<profile>/`` (its wall time,
    hardware, commit), or None when there is none or it does not follow the claims schema."""
    from replication.claims.report import load_report, validate_report  # pure, but jsonschema takes a second

    path = Path(committed_dir) / profile / f"{notebook}.json"
    try:
        report = load_report(path)
        if validate_report(report):
            return None
    except (OSError, ValueError):
        return None
    return report["provenance"]


def expected_text(provenance: Mapping[str, Any] | None, parameters: Mapping[str, Any] | None = None) -> str:
    """'last run took 60 s (2026-12-02, AMD EPYC, 2 threads)', naming the parameters it had that
    differ from ``parameters`` ('..., with seeds [0, 1, 2]'), or what is missing."""
    from replication.claims.report import format_duration, hardware_text, training_seconds

    if provenance is None:
        return "no previous report to time it by"
    if provenance.get("wall_time_s") is None:
        return "its last report recorded no wall time"
    day = str(provenance.get("started_at") or "")[:10]
    details = [p for p in (day, hardware_text(provenance)) if p]
    if parameters is not None:
        now = json.loads(json.dumps(dict(parameters), default=str))
        then = provenance.get("parameters") or {}
        details += [f"with {name} {json.dumps(then.get(name))}" for name in now
                    if name in then and then[name] != now[name]]
    text = f"last run took {format_duration(provenance['wall_time_s'])} ({', '.join(details)})"
    read = provenance.get("runs")
    if read:
        text += f"; the {len(read)} stored runs it read took {format_duration(training_seconds(read))} to train"
    return text


def total_text(outcomes: Sequence[Outcome], expected: Sequence[dict | None]) -> str:
    """'total: 4 notebooks in 3.2 min; their last runs took 2.5 min (1 had no previous report)'."""
    from replication.claims.report import format_duration

    timed = [p["wall_time_s"] for p in expected if p and p.get("wall_time_s") is not None]
    untimed = len(expected) - len(timed)
    text = f"total: {len(outcomes)} notebook{'s' if len(outcomes) != 1 else ''} in " \
           f"{format_duration(sum(o.seconds for o in outcomes))}"
    if timed:
        text += f"; {'their' if not untimed else f'{len(timed)} of their'} last runs took {format_duration(sum(timed))}"
    if untimed:
        text += f" ({untimed} had no timed previous report)"
    return text


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------

def reproduce(profile: str = "cpu", only: Sequence[str] | None = None, overrides: Sequence[tuple[str, str]] = (),
              notebooks_dir: Path = NOTEBOOKS_DIR, reports_dir: Path = REPORTS_DIR, build_dir: Path = BUILD_DIR,
              profiles_dir: Path | None = None, cell_timeout: int | None = None, store: Path | None = None,
              committed_dir: Path = REPORTS_DIR, log: Callable[[str], None] = print) -> int:
    """Execute notebooks into ``reports_dir/<profile>/`` and rebuild the index there; 0 when all succeed.

    ``store``: the run store (and checkpoint cache) the kernels use instead of runs/ (see
    ``store_environment``). ``committed_dir``: the reports whose recorded wall times are the
    expected ones (reports/, whatever ``reports_dir`` is)."""
    try:
        params = parameters_for(profile, overrides, profiles_dir)
        notebooks = find_notebooks(only, notebooks_dir)
    except profiles.ParameterError as error:
        log(f"error: {error}")
        return 2
    if not notebooks:
        log(f"error: no notebooks NN_topic.ipynb in {notebooks_dir}")
        return 2
    problem = kernel_problem()
    if problem:
        log(f"error: {problem}")
        return 2
    environment = store_environment(store) if store is not None else {}
    if store is not None:
        Path(environment[STORE_ENV]).mkdir(parents=True, exist_ok=True)
        log(f"run store: {environment[STORE_ENV]} (checkpoints in {environment[CACHE_ENV]}); runs it lacks are "
            "trained into it, so the last runs' times below, taken with the committed runs/, can be far too short")
    if Path(reports_dir).resolve() != Path(committed_dir).resolve():
        log(f"reports: {Path(reports_dir) / profile} (the committed {Path(committed_dir) / profile} is left as it is)")
    outcomes, expected = [], []
    for number, notebook in enumerate(notebooks, start=1):
        previous = last_run(committed_dir, profile, notebook.stem)
        expected.append(previous)
        # a notebook whose claim needs more nets gets more seeds, unless -p seeds named them
        these = params if any(name == "seeds" for name, _ in overrides) else \
            profiles.notebook_parameters(params, notebook.stem)
        more = f"; seeds {these['seeds']}, the least its claim needs" if these["seeds"] != params["seeds"] else ""
        log(f"[{number}/{len(notebooks)}] {notebook.stem} (profile {profile}{more}; "
            f"{expected_text(previous, these)}) ...")
        outcome = execute(notebook, profile, these, Path(reports_dir), Path(build_dir), cell_timeout, environment)
        state = "ok" if outcome.ok else "FAILED"
        log(f"[{number}/{len(notebooks)}] {notebook.stem} {state} in {outcome.seconds:.0f} s: {outcome.message}")
        outcomes.append(outcome)
    from replication.claims.report import write_index  # pure: no torch (replication.reports re-exports it)

    index = write_index(Path(reports_dir))
    failed = [o for o in outcomes if not o.ok]
    log(total_text(outcomes, expected))
    log(f"index: {index}")
    if failed:
        log(f"{len(failed)} of {len(outcomes)} notebooks failed (their previous reports are unchanged): "
            + "; ".join(o.message for o in failed))
        return 1
    return 0
