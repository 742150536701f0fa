"""The notebooks, the profiles and the `reproduce` command (issue 5).

The committed reports themselves are re-executed by nbval (`make test`); here:
the notebooks are committed clean, their parameters cell is the profiles'
contract, a bad parameter fails in the first cells naming it, and a failed
notebook leaves the previous report in place.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
import yaml

from replication.profiles import REPO  # the repository root
from replication import claims, profiles, reproduce
from replication import experiments  # noqa: F401  (importing it registers every notebook's claims)

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def load(path):
    return json.loads(path.read_text())


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell) -> str:
    return "".join(cell["source"])


# --------------------------------------------------------------------------- the notebooks

def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert names[:2] == ["00_miniature.ipynb", "01_architecture.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    for index, cell in enumerate(code_cells(load(path))):
        assert cell["outputs"] == [], f"{path.name}: cell {index} has outputs; clear them before committing"
        assert cell["execution_count"] is None, f"{path.name}: cell {index} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_name_kernel_and_claims(path):
    nb = load(path)
    stem = path.stem
    assert stem[:2].isdigit() and stem[2] == "_" and stem == stem.lower(), "name notebooks NN_topic.ipynb"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert claims.claims_for(stem), f"register {stem}'s claims in its module in replication/experiments/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_holds_simple_literals_defaulting_to_cpu(path):
    cells = code_cells(load(path))
    tagged = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
    values = {}
    for statement in ast.parse(source(tagged[0])).body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
            and isinstance(statement.targets[0], ast.Name), f"{path.name}: only `name = literal` lines"
        values[statement.targets[0].id] = ast.literal_eval(statement.value)  # raises on non-literals
    # the ImageNet-protocol notebooks also take your images and a recipe for them, both None by default
    if tuple(values) == profiles.PARAMETERS + profiles.DATA_PARAMETERS:
        assert all(values.pop(name) is None for name in profiles.DATA_PARAMETERS), path.name
    assert tuple(values) == profiles.PARAMETERS
    assert values == profiles.load_profile("cpu")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_are_validated_in_the_next_cell(path):
    cells = code_cells(load(path))
    index = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    check = source(cells[index + 1])
    assert "profiles.validate_parameters(" in check
    taken = profiles.PARAMETERS + (profiles.DATA_PARAMETERS if "dataset" in source(cells[index]) else ())
    for name in taken:
        assert f"{name}={name}" in check, f"{path.name}: pass {name} to validate_parameters"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_varying_outputs_are_hidden_from_nbval(path):
    """Figures and provenance vary between runs: their cells carry NBVAL_IGNORE_OUTPUT,
    and the verdict cell (the one nbval is for) does not."""
    cells = code_cells(load(path))
    for cell in cells:
        text = source(cell)
        if any(call in text for call in ("save_figure(", "provenance_table(", "plt.show(")):
            assert "# NBVAL_IGNORE_OUTPUT" in text, f"{path.name}: mark `{text.splitlines()[-1]}`"
    verdict = [c for c in cells if "report.write()" in source(c)]
    assert len(verdict) == 1 and source(verdict[0]).rstrip().endswith("report.verdict_table()")
    assert "NBVAL" not in source(verdict[0])


# --------------------------------------------------------------------------- profiles and parameters

@pytest.mark.parametrize("name", ["smoke", "cpu", "paper"])
def test_profiles_load(name):
    params = profiles.load_profile(name)
    assert params["profile"] == name and tuple(params) == profiles.PARAMETERS


def test_smoke_profile_is_deterministic_and_small():
    params = profiles.load_profile("smoke")
    assert params["precision"] == "fp32" and len(params["seeds"]) == 1 and params["device"] == "cpu"


GOOD = {"profile": "smoke", "seeds": [0], "epochs": None, "data_root": None, "device": "cpu", "precision": "fp32"}


@pytest.mark.parametrize("name, value", [
    ("profile", "nonsense"), ("seeds", 3), ("seeds", [-1]), ("seeds", []), ("seeds", [0, 0]),
    ("seeds", ["0"]), ("seeds", "zero"), ("seeds", "[0, x]"), ("seeds", "[0, "), ("seeds", "[]"), ("epochs", -1), ("epochs", 0), ("epochs", 2.5), ("epochs", True),
    ("data_root", "/no/such/folder"), ("data_root", 7), ("device", "gpu"), ("device", "cuda:x"),
    ("precision", "fp16"),
])
def test_a_bad_parameter_is_named(name, value):
    with pytest.raises(profiles.ParameterError, match=f"parameter '{name}'"):
        profiles.validate_parameters(**{**GOOD, name: value})


def test_your_images_and_a_preset_are_checked(tmp_path):
    params = profiles.validate_parameters(**{**GOOD, "dataset": f"folder:{tmp_path}", "preset": "imagenette-112"})
    assert (params["dataset"], params["preset"]) == (f"folder:{tmp_path}", "imagenette-112")
    assert profiles.validate_parameters(**GOOD)["dataset"] is None
    for name, value, problem in (("dataset", str(tmp_path), "folder:PATH"), ("dataset", "folder:/no/such", "existing"),
                                 ("dataset", "imagenette2-128", "folder:PATH"), ("preset", "huge", "imagenette-112"),
                                 ("preset", "cifar-conv-local", "ImageNet-like")):
        with pytest.raises(profiles.ParameterError, match=f"parameter '{name}'.*{problem}"):
            profiles.validate_parameters(**{**GOOD, name: value})


def test_a_notebook_that_needs_five_nets_gets_five_seeds_except_at_smoke():
    cpu = profiles.load_profile("cpu")
    assert profiles.notebook_parameters(cpu, "09_kernels")["seeds"] == [0, 1, 2, 3, 4]
    assert profiles.notebook_parameters({**cpu, "seeds": [2, 7]}, "09_kernels")["seeds"] == [2, 7, 8, 9, 10]
    assert profiles.notebook_parameters(cpu, "05_overlapping_pooling") == cpu
    smoke = profiles.load_profile("smoke")
    assert profiles.notebook_parameters(smoke, "09_kernels") == smoke


@pytest.mark.parametrize("text, seeds", [("[0, 1, 2]", [0, 1, 2]), ("0, 1", [0, 1]), ("3", [3])])
def test_seeds_given_as_text_are_read_as_a_list(text, seeds):
    """README's `papermill ... -p seeds "[0, 1, 2]"` passes the list as text: it is read, not rejected."""
    assert profiles.validate_parameters(**{**GOOD, "seeds": text})["seeds"] == seeds


def test_good_parameters_pass_normalised(tmp_path):
    params = profiles.validate_parameters(**{**GOOD, "seeds": (0, 1), "data_root": tmp_path})
    assert params["seeds"] == [0, 1] and params["data_root"] == str(tmp_path)
    # a profile file may name a GPU (the paper profile); the machine is checked when a notebook runs
    assert profiles.validate_parameters(**{**GOOD, "device": "cuda:1"}, check_paths=False)["device"] == "cuda:1"


def test_a_gpu_that_is_not_there_is_refused():
    import torch

    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU (cuda:0 on a machine without any)
    with pytest.raises(profiles.ParameterError, match="parameter 'device': this machine has .* CUDA devices"):
        profiles.validate_parameters(**{**GOOD, "device": missing})


def test_parameters_need_no_dataset(tmp_path, monkeypatch):
    """A report re-executed from the run store needs no images, so the parameter check
    does not look for datasets; a run that must train names the missing one (test_data)."""
    monkeypatch.setenv("REPLICATION_MIRRORS", str(tmp_path / "empty"))
    monkeypatch.setenv("REPLICATION_DATA", str(tmp_path / "data"))
    assert profiles.validate_parameters(**GOOD)["profile"] == GOOD["profile"]


def test_a_broken_profile_file_is_refused(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**GOOD, "profile": "tiny", "epoch": 3}))
    with pytest.raises(profiles.ParameterError, match="unknown epoch"):
        profiles.load_profile("tiny", tmp_path)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**GOOD, "profile": "other"}))
    with pytest.raises(profiles.ParameterError, match="expected 'tiny'"):
        profiles.load_profile("tiny", tmp_path)


# --------------------------------------------------------------------------- reproduce

def test_only_selects_by_number_or_name():
    assert reproduce.find_notebooks(["01"]) == reproduce.find_notebooks(["01_architecture"])
    assert reproduce.find_notebooks(["01"])[0].name == "01_architecture.ipynb"
    with pytest.raises(profiles.ParameterError, match="no notebook '77'"):
        reproduce.find_notebooks(["77"])


def test_parameter_overrides_are_yaml_and_checked():
    assert reproduce.parameters_for("smoke", [("seeds", "[0, 1]"), ("epochs", "null")])["seeds"] == [0, 1]
    with pytest.raises(profiles.ParameterError, match="parameter 'epochs'"):
        reproduce.parameters_for("smoke", [("epochs", "-2")])
    with pytest.raises(profiles.ParameterError, match="parameter 'epoch': unknown"):
        reproduce.parameters_for("smoke", [("epoch", "2")])


def test_unknown_profile_stops_before_any_kernel(tmp_path):
    lines = []
    code = reproduce.reproduce("nonsense", notebooks_dir=REPO / "notebooks", reports_dir=tmp_path,
                               build_dir=tmp_path / "build", log=lines.append)
    assert code == 2 and "parameter 'profile': unknown profile 'nonsense'" in lines[0]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("profile, retrained", [("smoke", True), ("cpu", False)])
def test_retrained_reports_compare_only_their_portable_cells(tmp_path, monkeypatch, profile, retrained):
    """A smoke report trains again when nbval re-executes it, so its digits depend on the CPU:
    every cell but the ``portable`` ones (and those with an NBVAL comment) is marked
    nbval-ignore-output. A cpu report re-executes from the run store and is compared in full.
    Neither is run on pinned kernels: the notebook gets the caller's environment."""
    import nbformat
    import papermill

    seen = {}

    def fake_execute(source, output, **kwargs):
        seen["kernels"] = profiles.cpu_kernels()
        nbformat.write(nbformat.read(source, as_version=4), output)
        (Path(output).parent / "03_lrn.json").write_text('{"claims": []}')

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    outcome = reproduce.execute(REPO / "notebooks" / "03_lrn.ipynb", profile, dict(GOOD),
                                reports_dir=tmp_path / "reports", build_dir=tmp_path / "build")
    assert outcome.ok and seen["kernels"] == profiles.cpu_kernels()
    cells = [c for c in nbformat.read(tmp_path / "reports" / profile / "03_lrn.ipynb", as_version=4).cells
             if c.cell_type == "code"]
    ignored = {i for i, c in enumerate(cells) if "nbval-ignore-output" in c.metadata.get("tags", [])}
    portable = {i for i, c in enumerate(cells) if profiles.PORTABLE_TAG in c.metadata.get("tags", [])}
    commented = {i for i, c in enumerate(cells) if "NBVAL_" in c.source}
    assert portable and any("report.check()" in cells[i].source for i in portable)
    if retrained:
        assert ignored == set(range(len(cells))) - portable - commented
    else:
        assert not ignored


def test_python3_kernel_is_this_environment():
    assert reproduce.kernel_problem() is None


@pytest.mark.slow
def test_bad_parameter_fails_in_the_first_cells_and_keeps_the_previous_report(tmp_path):
    """The real notebook 01 under a profile that reproduce accepts (its own profiles folder)
    but the notebook does not know: papermill stops at the validation cell, the command
    exits non-zero naming notebook and cell, and the previous report is untouched."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "ghost.yaml").write_text(yaml.safe_dump({**GOOD, "profile": "ghost"}))
    (tmp_path / "notebooks").mkdir()
    shutil.copy(REPO / "notebooks" / "01_architecture.ipynb", tmp_path / "notebooks")
    previous = tmp_path / "reports" / "ghost" / "01_architecture.json"
    previous.parent.mkdir(parents=True)
    shutil.copy(REPO / "reports" / "smoke" / "01_architecture.json", previous)
    before = previous.read_bytes()
    lines = []
    code = reproduce.reproduce("ghost", notebooks_dir=tmp_path / "notebooks", reports_dir=tmp_path / "reports",
                               build_dir=tmp_path / "build", profiles_dir=tmp_path / "profiles",
                               log=lines.append)
    assert code == 1
    failure = next(line for line in lines if "FAILED" in line)
    assert "01_architecture" in failure
    assert "(In [3]: from replication import profiles)" in failure  # parameters, injected, then this
    assert "ParameterError: parameter 'profile': unknown profile 'ghost'" in failure
    assert previous.read_bytes() == before
    assert sorted(p.name for p in previous.parent.iterdir()) == ["01_architecture.json"]
    assert (tmp_path / "build" / "failed" / "ghost" / "01_architecture.ipynb").is_file()
    assert (tmp_path / "reports" / "README.md").is_file()


def test_staging_folders_of_a_killed_reproduce_are_removed(tmp_path, monkeypatch):
    """A reproduce killed mid-notebook leaves its staging folder; the next one removes it."""
    import papermill

    dead = tmp_path / "build" / "staging" / ".partial-smoke-01_architecture-999999999-0123abcd"
    dead.mkdir(parents=True)
    monkeypatch.setattr(papermill, "execute_notebook", lambda *args, **kwargs: None)
    reproduce.execute(REPO / "notebooks" / "01_architecture.ipynb", "smoke", dict(GOOD),
                      reports_dir=tmp_path / "reports", build_dir=tmp_path / "build")
    assert not dead.exists()
