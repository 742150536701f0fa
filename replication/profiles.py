"""Profiles: the scale a notebook runs at, and the checks on its parameters.

A profile is a YAML file of papermill parameters in ``profiles/``
(``smoke.yaml``, ``cpu.yaml``, ``paper.yaml``; see DESIGN.md's table), passed
to papermill with ``-f`` or by ``python -m replication reproduce --profile``.
Every notebook has the same ``parameters`` cell (``PARAMETERS`` below, with
the cpu profile's values as defaults), and its first code cell calls
:func:`validate_parameters`, so an unknown profile, a wrong type or negative
epochs stops the notebook in its first cells, before any
training, with a message that names the parameter.

This module imports neither torch nor pandas, so that check costs nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILES_DIR = REPO / "profiles"

#: The parameters every notebook takes, in the order of its parameters cell.
PARAMETERS = ("profile", "seeds", "epochs", "data_root", "device", "precision")
#: What the ImageNet-protocol notebooks (03 on) take besides: your images instead of the profile's
#: stand-in for ImageNet (``folder:PATH``), and the recipe to train on them (a ``train --preset``
#: name). None: the profile's own. Profiles do not set them; papermill's ``-p`` does.
DATA_PARAMETERS = ("dataset", "preset")
#: Notebooks whose claim needs more nets than a profile's seeds: Fig. 3's rule (``share_of_seeds``)
#: asks for five. ``reproduce`` runs them at that many seeds (the profile's, then the next integers)
#: unless ``-p seeds`` says otherwise; not at smoke, which draws no conclusion.
SEEDS_AT_LEAST = {"09_kernels": 5}
PRECISIONS = ("fp32", "bf16")
DEVICE_KINDS = ("cpu", "cuda", "mps")

# Results computed on the CPU depend on the machine, not only on the code: oneDNN,
# ATen and MKL pick AVX-512 kernels where the CPU has them and AVX2 ones where it
# does not, and the two round differently, as does a different thread count.
# Nothing the test suite compares exactly may depend on that. These variables pin
# the kernels to AVX2 and the threads to one: `make test` runs the unit tests a
# second time under them, so a comparison that holds only with one CPU's kernels
# fails on any machine with AVX-512 (and one that holds only for one thread count
# fails everywhere). They act only if they are in the environment before torch
# runs its first kernel, so they are given to a fresh process.
PORTABLE_CPU_ENV = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2",
    "OMP_NUM_THREADS": "1",
    "REPLICATION_TEST_THREADS": "1",
}
# Reports of these profiles train again when they are re-executed (in CI too), so
# their measured digits differ between CPUs: `replication reproduce` marks every cell
# of theirs but the ``portable``-tagged ones `nbval-ignore-output`, and nbval then
# checks that each cell runs and compares only what holds on every machine
# (``NotebookReport.check``). Reports of the other profiles re-execute from the run
# store, exactly, and nbval compares every cell.
RETRAINED_PROFILES = ("smoke",)
PORTABLE_TAG = "portable"


def cpu_kernels() -> str:
    """Which CPU kernels this process runs: 'native', or what the environment pins them to."""
    pins = [f"{k}={os.environ[k]}" for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR")
            if os.environ.get(k)]
    return f"pinned ({', '.join(pins)})" if pins else "native"


class ParameterError(ValueError):
    """A notebook parameter or profile that cannot be used; the message names it."""


def available_profiles(profiles_dir: Path | None = None) -> list[str]:
    """Names of the profiles in ``profiles/`` (``smoke``, ``cpu``, ``paper``)."""
    return sorted(p.stem for p in Path(profiles_dir or PROFILES_DIR).glob("*.yaml"))


def profile_path(name: str, profiles_dir: Path | None = None) -> Path:
    folder = Path(profiles_dir or PROFILES_DIR)
    known = available_profiles(folder)
    if not isinstance(name, str) or name not in known:
        raise ParameterError(
            f"parameter 'profile': unknown profile {name!r}; choose one of {', '.join(known)} "
            f"(the files {folder}/<profile>.yaml)")
    return folder / f"{name}.yaml"


def load_profile(name: str, profiles_dir: Path | None = None) -> dict[str, Any]:
    """The parameters of one profile, checked: exactly ``PARAMETERS``, valid values,
    and ``profile`` equal to the file's name."""
    path = profile_path(name, profiles_dir)
    params = yaml.safe_load(path.read_text()) or {}
    if not isinstance(params, dict):
        raise ParameterError(f"{path}: a profile is a mapping of parameter: value, got {type(params).__name__}")
    missing = [p for p in PARAMETERS if p not in params]
    unknown = [p for p in params if p not in PARAMETERS]
    if missing or unknown:
        raise ParameterError(f"{path}: parameters must be exactly {', '.join(PARAMETERS)}"
                             + (f"; missing {', '.join(missing)}" if missing else "")
                             + (f"; unknown {', '.join(map(str, unknown))}" if unknown else ""))
    if params["profile"] != name:
        raise ParameterError(f"{path}: parameter 'profile' is {params['profile']!r}, expected {name!r}")
    validate_parameters(**params, profiles_dir=profiles_dir, check_paths=False)
    return params


def notebook_parameters(params: Mapping[str, Any], notebook: str) -> dict[str, Any]:
    """``params`` for one notebook: its seeds raised to ``SEEDS_AT_LEAST`` where it needs more (the
    profile's seeds first, then the next integers), except at the smoke profile."""
    params = dict(params)
    need = SEEDS_AT_LEAST.get(notebook, 0)
    if params["profile"] == "smoke" or len(params["seeds"]) >= need:
        return params
    seeds = list(params["seeds"])
    extra = max(seeds, default=-1) + 1
    while len(seeds) < need:
        seeds.append(extra)
        extra += 1
    params["seeds"] = seeds
    return params


def _fail(name: str, problem: str, value: Any) -> None:
    raise ParameterError(f"parameter {name!r}: {problem}, got {value!r} ({type(value).__name__})")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _seeds_from_text(text: str) -> Any:
    """``"[0, 1, 2]"``, ``"0, 1, 2"`` or ``"3"`` as a list of seeds; other text is returned as it came,
    for the check to name."""
    try:
        value = yaml.safe_load(text if text.strip().startswith("[") else f"[{text}]")
    except yaml.YAMLError:
        return text
    return value if isinstance(value, list) else text


def validate_parameters(
    *,
    profile: Any,
    seeds: Any,
    epochs: Any,
    data_root: Any,
    device: Any,
    precision: Any,
    dataset: Any = None,
    preset: Any = None,
    profiles_dir: Path | None = None,
    check_paths: bool = True,
) -> dict[str, Any]:
    """Check a notebook's parameters; return them normalised (seeds as a list).

    Raises :class:`ParameterError` (a ``ValueError``) naming the first bad
    parameter. Datasets are not looked for here: a report re-executed from the
    run store needs none, and a run that must be trained checks its dataset
    before it starts (``replication.data`` names where it looked and how to get it).
    """
    profile_path(profile, profiles_dir)
    if isinstance(seeds, str):  # papermill's -p passes "[0, 1, 2]" as text (-y would pass a list)
        seeds = _seeds_from_text(seeds)
    if isinstance(seeds, tuple):
        seeds = list(seeds)
    if not isinstance(seeds, list) or not seeds or not all(_is_int(s) and s >= 0 for s in seeds):
        _fail("seeds", "must be a non-empty list of non-negative integers such as [0, 1, 2]", seeds)
    if len(set(seeds)) != len(seeds):
        _fail("seeds", "must not repeat a seed", seeds)
    if epochs is not None and not (_is_int(epochs) and epochs >= 1):
        _fail("epochs", "must be a positive integer, or None for each experiment's own default", epochs)
    if data_root is not None:
        if not isinstance(data_root, (str, os.PathLike)) or not str(data_root):
            _fail("data_root", "must be a folder path, or None for REPLICATION_DATA's default", data_root)
        if check_paths and not Path(data_root).expanduser().is_dir():
            _fail("data_root", "must be an existing folder", str(data_root))
    if not isinstance(device, str) or device.split(":", 1)[0] not in DEVICE_KINDS or (
            ":" in device and not device.split(":", 1)[1].isdigit()):
        _fail("device", f"must be one of {', '.join(DEVICE_KINDS)} (optionally 'cuda:N')", device)
    if check_paths and device.split(":", 1)[0] == "cuda":
        import torch  # lazily: only a notebook that asks for a GPU pays torch's start-up here

        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            _fail("device", f"this machine has {torch.cuda.device_count()} CUDA devices; use 'cpu'", device)
    if precision not in PRECISIONS:
        _fail("precision", f"must be one of {', '.join(PRECISIONS)}", precision)
    _check_dataset(dataset, check_paths)
    _check_preset(preset)
    return {"profile": profile, "seeds": list(seeds), "epochs": epochs,
            "data_root": None if data_root is None else str(data_root),
            "device": device, "precision": precision, "dataset": dataset, "preset": preset}


def _check_dataset(dataset: Any, check_paths: bool) -> None:
    """``None`` or ``folder:PATH`` (your images in the ImageFolder layout; see README, *Your own images*)."""
    if dataset is None:
        return
    if not isinstance(dataset, str) or not dataset.startswith("folder:") or dataset == "folder:":
        _fail("dataset", "must be None (the profile's data) or folder:PATH, a folder of your images "
                         "(train/<class>/*.jpg and val/<class>/*.jpg, or one folder of class folders)", dataset)
    if check_paths and not Path(dataset[len("folder:"):]).expanduser().is_dir():
        _fail("dataset", "must name an existing folder", dataset)


def _check_preset(preset: Any) -> None:
    """``None`` or a ``train --preset`` name that stands for ImageNet (not CIFAR-10's net)."""
    if preset is None:
        return
    from replication.experiments.presets import IMAGENET_PRESETS  # lazily: it imports torch

    if preset not in IMAGENET_PRESETS:
        _fail("preset", f"must be None or one of {', '.join(IMAGENET_PRESETS)} (a recipe for ImageNet-like "
                        "images; `python -m replication train --help` describes each)", preset)
