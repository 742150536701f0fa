"""Re-running a profile aside and comparing it with the committed reports (issue 19, items 5 and 6).

``python -m replication compare A B`` pairs two report folders' claims; ``reproduce --store DIR
--reports DIR`` sends the runs and the reports of a re-run away from runs/ and reports/, and says
before each notebook how long its last run took. The claims JSONs here are small ones built with
the library's writer (``write_claims_json``, which checks the schema); no notebook is executed:
papermill is replaced by a stand-in that checks the kernel's settings and writes a report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import papermill
import pytest

from replication import reproduce
from replication.__main__ import main
from replication.claims.compare import DIFFERS, ONLY_A, ONLY_B, SAME, CompareError, compare, read_reports
from replication.claims.report import write_claims_json
from replication.cli import reproduce as reproduce_cli

SCALE = {"dataset": "cifar10", "variant": "toy", "image_size": 24, "epochs": 2, "precision": "fp32",
         "seeds": [0, 1, 2]}


def entry(claim_id: str, status: str, measured: dict | None, unit: str = "percentage points") -> dict:
    """One claim of a claims JSON, in the schema (the status as given: that is what a report records)."""
    return {"id": claim_id, "kind": "claim", "statement": f"statement of {claim_id}",
            "paper": {"value": 1.0, "display": "1", "source": {"section": "3.3"}}, "unit": unit,
            "measured": measured, "scale": SCALE, "rule": {"name": "test", "params": {}}, "status": status,
            "note": ""}


def seeded(value: float, low: float, high: float) -> dict:
    return {"value": value, "seeds": [0, 1, 2], "ci95": [low, high]}


def provenance(profile: str, wall_time_s: float | None = 60.0, seeds=(0, 1, 2)) -> dict:
    return {"package_version": "0.1.0", "git_commit": "0123456789abcdef", "git_dirty": False, "python": "3.11",
            "torch": "2", "torchvision": "0", "platform": "Linux", "cpu": "Test CPU", "gpu": None, "threads": 2,
            "started_at": "2026-01-02T03:04:05+00:00", "wall_time_s": wall_time_s,
            "parameters": {"profile": profile, "seeds": list(seeds)}}


def write_report(folder: Path, notebook: str, entries: list[dict], profile: str = "cpu", **prov) -> Path:
    return write_claims_json(folder / profile / f"{notebook}.json", notebook, profile, entries,
                             provenance(profile, **prov))


@pytest.fixture
def two_folders(tmp_path):
    """A (committed) and B (a re-run): one claim the same, one whose status and interval differ,
    one that only A holds, one only B, an exact count, and a claim measured in neither."""
    a, b = tmp_path / "reports", tmp_path / "fresh-reports"
    write_report(a, "03_lrn", [entry("lrn.same", "reproduced", seeded(2.0, 1.0, 3.0)),
                               entry("lrn.moved", "inconclusive", seeded(0.5, -0.5, 1.5)),
                               entry("lrn.only_a", "reproduced", seeded(1.0, 0.5, 1.5))])
    write_report(b, "03_lrn", [entry("lrn.same", "reproduced", seeded(3.0, 2.5, 4.0)),
                               entry("lrn.moved", "reproduced", seeded(3.0, 2.0, 4.0)),
                               entry("lrn.only_b", "inconclusive", None)], seeds=(5, 6, 7))
    write_report(a, "01_architecture", [entry("arch.params", "reproduced", {"value": 60965224}, "count"),
                                        entry("arch.top", "not evaluated", None)])
    write_report(b, "01_architecture", [entry("arch.params", "not reproduced", {"value": 60965225}, "count"),
                                        entry("arch.top", "not evaluated", None)])
    return a, b


# --------------------------------------------------------------------------- compare

def test_claims_are_paired_with_status_interval_and_verdict(two_folders):
    a, b = two_folders
    rows = {r.claim: r.strings() for r in compare(a / "cpu", b / "cpu").rows}
    assert rows["lrn.same"]["status A"] == rows["lrn.same"]["status B"] == "reproduced"
    assert rows["lrn.same"]["measured A"] == "+2.0 pp [+1.0 pp, +3.0 pp] (3 seeds)"
    assert rows["lrn.same"]["measured B"] == "+3.0 pp [+2.5 pp, +4.0 pp] (3 seeds)"
    assert (rows["lrn.same"]["overlap"], rows["lrn.same"]["verdict"]) == ("yes", SAME)
    assert (rows["lrn.moved"]["status A"], rows["lrn.moved"]["status B"]) == ("inconclusive", "reproduced")
    assert (rows["lrn.moved"]["overlap"], rows["lrn.moved"]["verdict"]) == ("no", DIFFERS)
    assert (rows["lrn.only_a"]["status B"], rows["lrn.only_a"]["verdict"]) == ("(absent)", ONLY_A)
    assert (rows["lrn.only_b"]["status A"], rows["lrn.only_b"]["verdict"]) == ("(absent)", ONLY_B)
    # an exact count is a point: two different counts do not overlap
    assert (rows["arch.params"]["overlap"], rows["arch.params"]["verdict"]) == ("no", DIFFERS)
    # measured in neither: no interval to compare, the status still is
    assert (rows["arch.top"]["overlap"], rows["arch.top"]["verdict"]) == ("—", SAME)


def test_summary_counts_and_the_folders_provenance(two_folders):
    a, b = two_folders
    comparison = compare(a / "cpu", b / "cpu")
    assert comparison.summary() == ("6 claims: 2 same status, 2 differ, 2 only in one folder; "
                                    "intervals overlap for 1 of the 3 measured in both.")
    text = comparison.text()
    assert text.startswith(f"A = {a / 'cpu'}: profile cpu, 2 notebooks, seeds [0, 1, 2], commit 0123456789, "
                           "Test CPU, 2 threads, 2.0 min in all\n")
    assert f"B = {b / 'cpu'}: profile cpu, 2 notebooks, seeds [0, 1, 2] / [5, 6, 7]" in text
    assert text.endswith(comparison.summary() + "\n")


def test_a_reports_folder_and_its_profile_folder_compare_alike(two_folders):
    a, b = two_folders
    by_profile_folder = [r.strings() for r in compare(a / "cpu", b / "cpu").rows]
    by_reports_folder = [r.strings() for r in compare(a, b).rows]
    assert by_reports_folder == by_profile_folder


def test_with_several_profiles_claims_are_matched_by_profile_too(two_folders):
    a, b = two_folders
    write_report(a, "03_lrn", [entry("lrn.same", "inconclusive", None)], profile="smoke")
    rows = {r.claim: r.verdict for r in compare(a, b).rows}
    assert rows["cpu/lrn.same"] == SAME and rows["smoke/lrn.same"] == ONLY_A


def test_command_prints_the_table_and_writes_markdown(two_folders, tmp_path, capsys):
    a, b = two_folders
    markdown = tmp_path / "out" / "compare.md"
    assert main(["compare", str(a / "cpu"), str(b / "cpu"), "--markdown", str(markdown)]) == 0
    out = capsys.readouterr().out
    assert "claim" in out and "intervals overlap" in out and "lrn.moved" in out and "differs" in out
    lines = markdown.read_text().splitlines()
    assert "| claim | status in A | status in B | measured in A [95% interval] | measured in B [95% interval] " \
           "| intervals overlap | same? |" in lines
    assert ("| `lrn.moved` | inconclusive | reproduced | +0.5 pp [-0.5 pp, +1.5 pp] (3 seeds) "
            "| +3.0 pp [+2.0 pp, +4.0 pp] (3 seeds) | no | differs |") in lines
    assert lines[-1].startswith("6 claims: 2 same status, 2 differ")


@pytest.mark.parametrize("problem", ["missing", "empty", "broken json", "not the schema"])
def test_an_unreadable_folder_is_an_error_naming_it(two_folders, tmp_path, capsys, problem):
    a, _ = two_folders
    bad = tmp_path / "bad"
    if problem != "missing":
        bad.mkdir()
    if problem == "broken json":
        (bad / "03_lrn.json").write_text("{ not json")
    if problem == "not the schema":
        (bad / "03_lrn.json").write_text('{"claims": []}')
    with pytest.raises(CompareError, match=f"^{bad}: "):
        read_reports(bad)
    assert main(["compare", str(a / "cpu"), str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: ") and ("03_lrn.json" in err) == problem.endswith(("json", "schema"))


# --------------------------------------------------------------------------- reproduce aside

def fixture_notebooks(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), folder / f"{name}.ipynb")
    return folder


@pytest.fixture
def fake_kernel(monkeypatch):
    """papermill replaced: each 'execution' records the settings the kernel would get and writes
    a claims JSON and the notebook into the staging folder, as a notebook's report.write() does."""
    seen = []

    def execute_notebook(source, output, parameters, **kwargs):
        stem = Path(source).stem
        staging = Path(os.environ[reproduce.REPORT_DIR_ENV])
        seen.append({name: os.environ.get(name) for name in (reproduce.STORE_ENV, reproduce.CACHE_ENV)})
        nbformat.write(nbformat.read(source, as_version=4), output)
        write_claims_json(staging / f"{stem}.json", stem, parameters["profile"],
                          [entry("lrn.same", "reproduced", seeded(2.0, 1.0, 3.0))], provenance(parameters["profile"]))

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    monkeypatch.setattr(reproduce, "kernel_problem", lambda: None)
    monkeypatch.delenv(reproduce.STORE_ENV, raising=False)
    monkeypatch.delenv(reproduce.CACHE_ENV, raising=False)
    return seen


def test_store_and_reports_route_a_rerun_away_from_the_committed_ones(tmp_path, fake_kernel):
    committed = tmp_path / "reports"
    write_report(committed, "03_lrn", [entry("lrn.same", "inconclusive", None)], profile="smoke")
    (committed / "README.md").write_text("the committed index\n")
    before = {p: p.read_bytes() for p in committed.rglob("*") if p.is_file()}
    fresh, fresh_reports = tmp_path / "fresh", tmp_path / "fresh-reports"
    lines = []
    code = reproduce.reproduce("smoke", notebooks_dir=fixture_notebooks(tmp_path / "notebooks", "03_lrn"),
                               reports_dir=fresh_reports, build_dir=tmp_path / "build", store=fresh,
                               committed_dir=committed, log=lines.append)
    assert code == 0, lines
    # the kernel got the fresh store and a cache of its own (not the one holding runs/' final checkpoints)
    assert fake_kernel == [{"REPLICATION_STORE": str(fresh.resolve()),
                            "REPLICATION_CACHE": str(fresh.resolve() / ".cache")}]
    assert os.environ.get("REPLICATION_STORE") is None  # restored after the notebook
    assert sorted(p.name for p in (fresh_reports / "smoke").iterdir()) == ["03_lrn.ipynb", "03_lrn.json"]
    assert "lrn.same" in (fresh_reports / "README.md").read_text()
    assert {p: p.read_bytes() for p in committed.rglob("*") if p.is_file()} == before
    assert fresh.is_dir() and any(str(fresh.resolve()) in line for line in lines)


def test_the_expected_time_comes_from_the_committed_report(tmp_path, fake_kernel):
    committed = tmp_path / "reports"
    write_report(committed, "03_lrn", [entry("lrn.same", "inconclusive", None)], profile="smoke", wall_time_s=75.0)
    lines = []
    reproduce.reproduce("smoke", overrides=[("seeds", "[5, 6]")],
                        notebooks_dir=fixture_notebooks(tmp_path / "notebooks", "03_lrn", "05_pooling"),
                        reports_dir=tmp_path / "out", build_dir=tmp_path / "build", committed_dir=committed,
                        log=lines.append)
    assert "[1/2] 03_lrn (profile smoke; last run took 75 s (2026-01-02, Test CPU, 2 threads, "\
           "with seeds [0, 1, 2])) ..." in lines
    assert "[2/2] 05_pooling (profile smoke; no previous report to time it by) ..." in lines
    total = next(line for line in lines if line.startswith("total: "))
    assert total.startswith("total: 2 notebooks in ") and \
        total.endswith("; 1 of their last runs took 75 s (1 had no timed previous report)")


def test_the_expected_time_names_the_training_of_the_runs_a_report_read():
    provenance = {"wall_time_s": 40.0, "started_at": "2026-01-02T00:00:00", "cpu": "Test CPU", "threads": 2,
                  "runs": {"0" * 16: 1500.0, "1" * 16: 1500.0}}
    assert reproduce.expected_text(provenance) == ("last run took 40 s (2026-01-02, Test CPU, 2 threads); "
                                                   "the 2 stored runs it read took 50.0 min to train")


def test_cli_store_alone_reports_beside_it_and_reports_alone_keeps_runs(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(reproduce_cli, "reproduce", lambda *args, **kwargs: calls.append(kwargs) or 0)
    assert main(["reproduce", "--store", str(tmp_path / "fresh")]) == 0
    assert main(["reproduce", "--store", str(tmp_path / "fresh"), "--reports", str(tmp_path / "elsewhere")]) == 0
    assert main(["reproduce", "--reports", str(tmp_path / "elsewhere")]) == 0
    assert main(["reproduce"]) == 0
    assert [(c["store"], c["reports_dir"]) for c in calls] == [
        (tmp_path / "fresh", tmp_path / "fresh-reports"), (tmp_path / "fresh", tmp_path / "elsewhere"),
        (None, tmp_path / "elsewhere"), (None, reproduce.REPORTS_DIR)]


def test_index_only_writes_the_index_of_the_reports_folder_given(two_folders, tmp_path):
    a, _ = two_folders
    assert main(["reproduce", "--index-only", "--reports", str(a)]) == 0
    assert "lrn.moved" in (a / "README.md").read_text()


def test_readme_commands_map_to_these_options():
    """README's "Re-running and comparing" commands: the make line reaches reproduce with --store,
    --reports and -p seeds (Makefile), and the compare line parses."""
    import re
    import shlex
    import shutil
    import subprocess

    from replication.__main__ import build_parser
    from replication.profiles import REPO

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Re-running and comparing", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1].strip().splitlines()
    make_line = next(line for line in block if line.startswith("make reproduce")).split("#")[0].split()
    compare_line = shlex.split(next(line for line in block if " compare " in line))
    args = build_parser().parse_args(compare_line[compare_line.index("replication") + 1:])
    assert (args.command, args.a, args.b) == ("compare", Path("reports/cpu"), Path("fresh-reports/cpu"))
    if shutil.which("make") is None:
        pytest.skip("no `make` here to expand the Makefile")
    dry = subprocess.run(["make", "-n", *make_line[1:], "SEEDS=[5, 6, 7]"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.replace("\\\n", " ")
    command = shlex.split(next(line for line in dry.splitlines() if "-m replication reproduce" in line))
    args = build_parser().parse_args(command[command.index("replication") + 1:])
    assert (args.profile, args.store, args.reports) == ("cpu", Path("fresh"), Path("fresh-reports"))
    assert args.parameter == [["seeds", "[5, 6, 7]"]]
    ignored = (REPO / ".gitignore").read_text()
    assert re.search(r"^/?fresh/$", ignored, flags=re.M) and re.search(r"^/?fresh-reports/$", ignored, flags=re.M)


@pytest.mark.slow
def test_a_real_kernel_gets_the_store_and_publishes_aside(tmp_path, monkeypatch):
    """One tiny notebook through papermill and a real kernel: the kernel sees the fresh store and
    cache, and its report lands in the reports folder given, not in the committed one."""
    monkeypatch.delenv(reproduce.STORE_ENV, raising=False)
    probe = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('profile = "cpu"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import json, os\n"
            "from pathlib import Path\n"
            "from replication.claims.report import write_claims_json\n"
            f"entry = json.loads({json.dumps(json.dumps(entry('probe.store', 'not evaluated', None)))})\n"
            'entry["note"] = os.environ["REPLICATION_STORE"] + "|" + os.environ["REPLICATION_CACHE"]\n'
            f"provenance = json.loads({json.dumps(json.dumps(provenance('smoke')))})\n"
            'write_claims_json(Path(os.environ["REPLICATION_REPORT_DIR"]) / "00_probe.json", "00_probe", profile,\n'
            "                  [entry], provenance)"),
    ], metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})
    (tmp_path / "notebooks").mkdir()
    nbformat.write(probe, tmp_path / "notebooks" / "00_probe.ipynb")
    fresh, lines = tmp_path / "fresh", []
    code = reproduce.reproduce("smoke", notebooks_dir=tmp_path / "notebooks", reports_dir=tmp_path / "fresh-reports",
                               build_dir=tmp_path / "build", store=fresh, committed_dir=tmp_path / "reports",
                               log=lines.append)
    assert code == 0, lines
    report = json.loads((tmp_path / "fresh-reports" / "smoke" / "00_probe.json").read_text())
    assert report["claims"][0]["note"] == f"{fresh.resolve()}|{fresh.resolve() / '.cache'}"
    assert not (tmp_path / "reports").exists()


def test_reproduce_runs_the_kernels_notebook_at_five_seeds_unless_told_otherwise(tmp_path, monkeypatch):
    """Fig. 3's rule needs five nets: `reproduce --profile cpu` gives notebook 09 five seeds, the others
    the profile's three, and `-p seeds` wins over both."""
    executed = {}

    def execute(notebook, profile, parameters, *args, **kwargs):
        executed[notebook.stem] = parameters["seeds"]
        return reproduce.Outcome(notebook.stem, True, 0.0, "ok")

    monkeypatch.setattr(reproduce, "execute", execute)
    monkeypatch.setattr(reproduce, "kernel_problem", lambda: None)
    notebooks = fixture_notebooks(tmp_path / "notebooks", "05_overlapping_pooling", "09_kernels")
    lines = []
    assert reproduce.reproduce("cpu", notebooks_dir=notebooks, reports_dir=tmp_path / "out",
                               build_dir=tmp_path / "build", committed_dir=tmp_path / "none", log=lines.append) == 0
    assert executed == {"05_overlapping_pooling": [0, 1, 2], "09_kernels": [0, 1, 2, 3, 4]}
    assert any("09_kernels (profile cpu; seeds [0, 1, 2, 3, 4], the least its claim needs;" in line for line in lines)
    reproduce.reproduce("cpu", overrides=[("seeds", "[0, 1]")], notebooks_dir=notebooks, reports_dir=tmp_path / "out",
                        build_dir=tmp_path / "build", committed_dir=tmp_path / "none", log=lines.append)
    assert executed == {"05_overlapping_pooling": [0, 1], "09_kernels": [0, 1]}
