"""The notebooks, the profiles and the `reproduce` command (issue 5).

The committed reports themselves are re-executed by nbval (`make test`); here:
the notebooks are committed clean, their parameters cell is the profiles'
contract, a bad parameter fails in the first cells naming it, and a failed
notebook leaves the previous report in place.
"""

from __future__ import annotations

import ast
import json
import os
import shutil

import pytest
import yaml

from replication.profiles import REPO  # the repository root (tests import no conftest: reports/ has one too)
from replication import claims, profiles, reproduce

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def load(path):
    return json.loads(path.read_text())


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell) -> str:
    return "".join(cell["source"])


# --------------------------------------------------------------------------- the notebooks

def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:1] == ["01_architecture.ipynb"]


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
    assert claims.claims_for(stem), f"register {stem}'s claims in replication/claims.py"


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
    assert tuple(values) == profiles.PARAMETERS
    assert values == profiles.load_profile("cpu")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_are_validated_in_the_next_cell(path):
    cells = code_cells(load(path))
    index = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    check = source(cells[index + 1])
    assert "profiles.validate_parameters(" in check
    for name in profiles.PARAMETERS:
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
    ("seeds", ["0"]), ("epochs", -1), ("epochs", 0), ("epochs", 2.5), ("epochs", True),
    ("data_root", "/no/such/folder"), ("data_root", 7), ("device", "gpu"), ("device", "cuda:x"),
    ("precision", "fp16"),
])
def test_a_bad_parameter_is_named(name, value):
    with pytest.raises(profiles.ParameterError, match=f"parameter '{name}'"):
        profiles.validate_parameters(**{**GOOD, name: value})


def test_good_parameters_pass_normalised(tmp_path):
    params = profiles.validate_parameters(**{**GOOD, "seeds": (0, 1), "data_root": tmp_path, "device": "cuda:1"})
    assert params["seeds"] == [0, 1] and params["data_root"] == str(tmp_path)


def test_a_missing_dataset_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATION_MIRRORS", str(tmp_path / "empty"))
    with pytest.raises(profiles.ParameterError, match="dataset 'cifar10-jpeg' is not available"):
        profiles.validate_parameters(**{**GOOD, "data_root": str(tmp_path)}, datasets=["cifar10-jpeg"])
    with pytest.raises(profiles.ParameterError, match="dataset 'imagenet-2030'"):
        profiles.validate_parameters(**GOOD, datasets=["imagenet-2030"])


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


@pytest.mark.parametrize("profile, pinned", [("smoke", True), ("cpu", False)])
def test_smoke_kernels_run_on_portable_cpu_kernels(tmp_path, monkeypatch, profile, pinned):
    """A smoke notebook's kernel inherits PORTABLE_CPU_ENV (its numbers must not depend on the
    CPU); a cpu one runs on the native kernels; afterwards the caller's environment is as it was."""
    import papermill

    for name in profiles.PORTABLE_CPU_ENV:
        monkeypatch.delenv(name, raising=False)
    seen = {}

    def fake_execute(*args, **kwargs):
        seen.update({name: os.environ.get(name) for name in profiles.PORTABLE_CPU_ENV})
        seen["kernels"] = profiles.cpu_kernels()

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    outcome = reproduce.execute(REPO / "notebooks" / "01_architecture.ipynb", profile, dict(GOOD),
                                reports_dir=tmp_path / "reports", build_dir=tmp_path / "build")
    assert not outcome.ok and "wrote no 01_architecture.json" in outcome.message
    if pinned:
        assert {k: seen[k] for k in profiles.PORTABLE_CPU_ENV} == profiles.PORTABLE_CPU_ENV
        assert seen["kernels"] == "AVX2, pinned (portable)"
    else:
        assert set(seen[k] for k in profiles.PORTABLE_CPU_ENV) == {None} and seen["kernels"] == "native"
    assert all(name not in os.environ for name in profiles.PORTABLE_CPU_ENV)


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
