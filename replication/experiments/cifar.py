"""The CIFAR-10 protocol of notebooks 02 (Fig. 1, Section 3.1) and 03 (Section 3.3's CIFAR-10 half).

- **Configs.** ``fig1_config`` (the four-layer net of Fig. 1 in the paper's setting or the modern
  default one), sized by the
  profile's ``Scale``. The cpu-profile configs name the committed runs in ``runs/<hash>/``: do not
  change them without retraining.
- **Runs.** ``get_run`` takes a run from the store (training it when missing; the smoke profile's
  go to the scratch store). A run whose loss becomes NaN (a learning rate too large, in Fig. 1's
  sweep) is recorded in ``runs/_diverged/<hash>.json`` as a ``Diverged`` run, which never reaches 25%.
- **Budget.** ``budget_table``: what was trained, for how long, on which machines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from replication.engine import runs
from replication.engine.checkpoints import load_checkpoint
from replication.engine.config import TrainConfig, config_hash
from replication.engine.trainer import NonFiniteLossError
from replication.experiments.scales import scale_for
from replication.provenance import describe_machines

THRESHOLD = 0.25  # Fig. 1: 25% training error
SETTINGS = ("paper", "modern")
ACTIVATIONS = ("relu", "tanh")
DATASET = "cifar10-jpeg"
MODERN_INPUT_SCALE = 64.0  # ~ the std of CIFAR-10's mean-subtracted pixels on the 0..255 scale


# ---------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------

def fig1_config(setting: str, activation: str, lr: float, seed: int, profile: str,
                epochs: int | None = None, precision: str = "fp32"):
    """One Fig. 1 run: the four-layer net, no regularisation of any kind, constant lr, momentum 0.9,
    stopped ``extra_epochs`` after its running training error crosses 25% (or at the epoch cap).

    ``paper``: the Gaussian initialisation of cuda-convnet's CIFAR configs (conv1 std 1e-4, others 1e-2,
    zero biases) and the paper's preprocessing, raw 0..255 pixels minus the mean image.
    ``modern``: PyTorch's default (Kaiming-uniform) initialisation and standardised inputs
    (mean image subtracted, divided by 64).
    """
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    s = scale_for(profile)
    model = {"arch": "fig1", "activation": activation}
    if setting == "modern":
        model["paper_init"] = False
    return TrainConfig(
        model=model, dataset=DATASET, train_per_class=s.fig1_train_per_class, val_per_class=s.fig1_val_per_class,
        crop=None, flip=False, lighting_std=0.0, mean_subtraction=True,
        input_scale=1.0 if setting == "paper" else MODERN_INPUT_SCALE,
        optimizer="paper", lr=lr, momentum=0.9, weight_decay=0.0, schedule="constant",
        epochs=epochs or s.fig1_epoch_cap, stop_at_train_error=THRESHOLD, extra_epochs=s.fig1_extra_epochs,
        seed=seed, precision=precision, channels_last=False, data_variant=s.cifar_variant,
    )


# ---------------------------------------------------------------------------
# Getting runs (trains when missing; smoke runs go to the scratch store)
# ---------------------------------------------------------------------------

def _diverged_path(config) -> Path:
    return runs.store_dir() / "_diverged" / f"{runs.config_hash(config)}.json"


@dataclass
class Diverged:
    """A run whose training loss became NaN/inf: it never reaches the threshold."""

    config: object
    hash: str
    epoch: int
    history: list

    summary = {}


def get_run(config, profile: str, progress: bool = False):
    """``runs.get`` (scratch store for smoke), or a :class:`Diverged` record for a NaN run."""
    scratch = profile == "smoke"
    path = _diverged_path(config) if not scratch else runs.scratch_store_dir() / "_diverged" / \
        f"{config_hash(config)}.json"
    if path.exists():
        record = json.loads(path.read_text())
        return Diverged(config, record["hash"], record["epoch"], record.get("history", []))
    try:
        return runs.get(config, progress=progress, scratch=scratch)
    except NonFiniteLossError as error:
        if runs.read_only() and not scratch:
            raise
        history = []
        if error.checkpoint is not None and Path(error.checkpoint).exists():
            history = load_checkpoint(error.checkpoint)["metrics"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"hash": config_hash(config), "epoch": error.epoch, "step": error.step,
                                    "config": config.to_dict(), "history": history}, indent=1) + "\n")
        return Diverged(config, config_hash(config), error.epoch, history)


def scale_of(config, seeds: Sequence[int], variant: str, epochs: int | None = None) -> dict:
    """The ``scale`` block of a claim entry for runs of ``config``."""
    size = config.crop or 32
    dataset = config.dataset + (f" ({config.data_variant})" if config.data_variant else "")
    return {"dataset": dataset, "variant": variant, "image_size": size,
            "epochs": epochs if epochs is not None else config.epochs,
            "precision": config.precision, "seeds": [int(s) for s in seeds]}


# ---------------------------------------------------------------------------
# The budget: what was trained, and how long it took (from the stored summaries)
# ---------------------------------------------------------------------------

def all_runs_of(result) -> list:
    """Every distinct stored run behind a notebook's result (its ``all_runs()``), each once."""
    return list({run.hash: run for run in result.all_runs()}.values())


def budget_table(results: Mapping[str, object]):
    """Per experiment: runs, epochs and images trained, training hours, precision, memory format and
    the machines they ran on."""
    rows = []
    for name, result in results.items():
        stored = [r for r in all_runs_of(result) if not isinstance(r, Diverged)]
        seconds = sum(r.summary.get("train_seconds", 0.0) for r in stored)
        epochs = sum(len(r.history) for r in stored)
        images = sum(len(r.history) * r.summary.get("train_images", 0) for r in stored)
        rows.append({"experiment": name, "runs": len(all_runs_of(result)), "epochs": epochs,
                     "images trained": f"{images:,}", "training time": f"{seconds / 60:.1f} min",
                     "precision": ", ".join(sorted({r.config.precision for r in stored})) or "—",
                     "channels_last": ", ".join(sorted({str(r.config.channels_last) for r in stored})) or "—",
                     "machine": describe_machines([r.summary.get("hardware") for r in stored])})
    return pd.DataFrame(rows).set_index("experiment")
