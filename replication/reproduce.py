"""Executing the claim notebooks (papermill) into reports/<profile>/, then rebuilding the index.

Choosing the notebooks and their profile's parameters, checking the kernel, running
each notebook in a staging folder under build/ and publishing it only when every cell
succeeds (a failed one is kept under build/failed/). The command line,
`python -m replication reproduce`, is replication/cli/reproduce.py.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from replication import profiles
from replication.paths import partial_name, remove_stale_partials

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO / "notebooks"
REPORTS_DIR = REPO / "reports"
BUILD_DIR = REPO / "build"
KERNEL_NAME = "python3"
REPORT_DIR_ENV = "REPLICATION_REPORT_DIR"  # = replication.reports.REPORT_DIR_ENV (not imported: it loads torch)


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
            build_dir: Path = BUILD_DIR, cell_timeout: int | None = None) -> Outcome:
    """Run one notebook with papermill into a staging folder; publish it only on success."""
    import papermill  # lazily: the optional notebooks extra, and seconds of start-up
    from papermill.exceptions import PapermillExecutionError

    stem = notebook.stem
    staging = partial_name(build_dir / "staging" / f"{profile}-{stem}")  # carries this process's pid
    remove_stale_partials(staging.parent)  # folders of a reproduce that was killed
    staging.mkdir(parents=True)
    output = staging / f"{stem}.ipynb"
    # The kernel inherits this: JSON and figures go to staging.
    overrides = {REPORT_DIR_ENV: str(staging)}
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
# The command
# ---------------------------------------------------------------------------

def reproduce(profile: str = "cpu", only: Sequence[str] | None = None, overrides: Sequence[tuple[str, str]] = (),
              notebooks_dir: Path = NOTEBOOKS_DIR, reports_dir: Path = REPORTS_DIR, build_dir: Path = BUILD_DIR,
              profiles_dir: Path | None = None, cell_timeout: int | None = None,
              log: Callable[[str], None] = print) -> int:
    """Execute notebooks into ``reports_dir/<profile>/`` and rebuild the index; 0 when all succeed."""
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
    outcomes = []
    for number, notebook in enumerate(notebooks, start=1):
        log(f"[{number}/{len(notebooks)}] {notebook.stem} (profile {profile}) ...")
        outcome = execute(notebook, profile, params, Path(reports_dir), Path(build_dir), cell_timeout)
        state = "ok" if outcome.ok else "FAILED"
        log(f"[{number}/{len(notebooks)}] {notebook.stem} {state} in {outcome.seconds:.0f} s: {outcome.message}")
        outcomes.append(outcome)
    from replication import reports  # lazily: it loads torch, matplotlib and pandas (see REPORT_DIR_ENV)

    index = reports.write_index(Path(reports_dir))
    failed = [o for o in outcomes if not o.ok]
    log(f"index: {index}")
    if failed:
        log(f"{len(failed)} of {len(outcomes)} notebooks failed (their previous reports are unchanged): "
            + "; ".join(o.message for o in failed))
        return 1
    return 0
