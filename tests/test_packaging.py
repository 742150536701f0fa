"""The install promises: pinned dependencies agree everywhere, CI runs README's command."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest
import yaml

from replication.profiles import REPO  # the repository root


def _requirement_pins(lines):
    pins = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def pyproject_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    return _requirement_pins(lines)


def environment_pins():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return _requirement_pins(pip_section)


def test_every_dependency_is_pinned():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    unpinned = [r for r in requirements if "==" not in r]
    assert not unpinned, f"unpinned requirements in pyproject.toml: {unpinned}"


def test_torch_pins_are_the_ones_this_machine_has():
    pins = pyproject_pins()
    assert pins["torch"] == "2.14.1"
    assert pins["torchvision"] == "0.29.1"


def test_environment_yml_matches_pyproject():
    assert environment_pins() == pyproject_pins(), (
        "environment.yml and pyproject.toml pin different versions; update both together"
    )


def test_environment_yml_python_matches_requires_python():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert (python, requires) == ("python=3.11", ">=3.11")


def test_ci_runs_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    match = re.search(r"^\s*(make test)\s*$", readme, flags=re.M)
    assert match, "README must give the test command on a line of its own"
    assert re.search(r"^make test$", ci, flags=re.M), ".ci/run must call README's test command exactly"


def test_cli_help_is_useful():
    out = subprocess.run(
        [sys.executable, "-m", "replication", "--help"],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout
    for word in ("data", "train", "reproduce", "REPLICATION_MIRRORS"):
        assert word in out


def test_a_known_error_is_one_line_on_stderr_and_a_nonzero_status():
    """No 30-line traceback for the package's own errors; --traceback shows it when wanted."""
    command = [sys.executable, "-m", "replication", "train", "--dataset", "nonsense", "--epochs", "1",
               "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and done.stderr.startswith("error: unknown dataset")
    traced = subprocess.run([sys.executable, "-m", "replication", "--traceback", *command[3:]],
                            capture_output=True, text=True, cwd=REPO)
    assert traced.returncode != 0 and "Traceback (most recent call last)" in traced.stderr
    bad_yaml = subprocess.run([sys.executable, "-m", "replication", "reproduce", "-p", "seeds", "[0"],
                              capture_output=True, text=True, cwd=REPO)
    assert bad_yaml.returncode == 2 and "parameter 'seeds': '[0' is not a YAML value" in bad_yaml.stdout + bad_yaml.stderr


def test_boolean_settings_have_one_strict_parser(monkeypatch):
    from replication.paths import env_flag

    for value, expected in [("1", True), ("on", True), ("TRUE", True), ("0", False), ("off", False), ("", False)]:
        monkeypatch.setenv("REPLICATION_STORE_READONLY", value)
        assert env_flag("REPLICATION_STORE_READONLY") is expected
    monkeypatch.setenv("REPLICATION_STORE_READONLY", "sometimes")
    with pytest.raises(ValueError, match="REPLICATION_STORE_READONLY='sometimes'"):
        env_flag("REPLICATION_STORE_READONLY")


def test_a_wheel_holds_every_subpackage():
    """A non-editable install ships every package under replication/ (``packages = ["replication"]``
    alone would leave out data/, models/, engine/... and break every import)."""
    from setuptools import find_packages

    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    found = set(find_packages(where=str(REPO), include=include))
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "replication").rglob("__init__.py")}
    assert on_disk <= found and {"replication.data", "replication.engine", "replication.claims"} <= on_disk
