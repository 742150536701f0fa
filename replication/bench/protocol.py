"""Part 5 of `python -m replication bench`: what one run of each protocol recipe costs on this CPU.

The protocol (notebook 00) pins every run's arithmetic (fp32, two threads), so that the arms of a
claim add in the same order on any machine. This part says what that choice costs where it is made:
for each recipe of a profile it times the training step of the recipe's baseline net exactly as the
trainer runs it (``Trainer.run_epoch``: the batch augmentation, the memory layout, the paper's SGD) on
random images of the recipe's shape, in fp32 and in bf16, interleaved in rounds, and the per-epoch
evaluation (``Trainer.evaluate`` in test mode); with the recipe's steps an epoch, validation and
training-error images and epochs, that gives the minutes one run takes here.

Run it natively, and again pinned to AVX2 kernels (``make cost`` does both) to see what a CPU without
AVX-512 pays: ATen's and oneDNN's AVX2 code on the same cores (the same clock and caches, so it
isolates the kernels, not a whole other machine). Each run of the part writes one JSON record named
after the CPU, its kernels and the thread count into ``benchmarks/protocol/``; notebook 00 shows every
committed record beside the times of the stored runs.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from replication import data, profiles
from replication.data.splits import synthetic_split
from replication.engine.trainer import Trainer
from replication.paths import REPO, atomic_write_text
from replication.provenance import bf16_is_native, cpu_model

RECORDS_DIR = REPO / "benchmarks" / "protocol"
PRECISIONS = ("fp32", "bf16")
RECORD_VERSION = 2  # 2: a row per arm and precision
TEN_CROPS = 10  # Section 6's test: four corners and the centre, and their reflections


def run_shape(recipe) -> dict[str, int]:
    """Steps an epoch, images evaluated after each epoch, and epochs of one baseline run of ``recipe``
    (counts from the dataset registry: no dataset is read)."""
    spec = data.get_spec(recipe.dataset)
    counts = spec.variant(recipe.data_variant).counts or spec.counts
    train = counts["train"]
    val = counts["val"] if "val" in counts else counts["test"]
    config = recipe.config(0)
    return {"train_images": train, "steps_per_epoch": math.ceil(train / config.batch_size),
            "eval_images_per_epoch": val + min(recipe.train_eval_images, train), "epochs": config.epochs,
            "final_eval_images": TEN_CROPS * val, "batch_size": config.batch_size}


def _trainer(recipe, arm: str, precision: str, batch: int, steps: int) -> Trainer:
    """The trainer of ``arm`` at ``recipe``'s scale on random images of the recipe's size and classes,
    enough of them for ``steps`` full batches an epoch (an epoch of fewer images would end early)."""
    config = replace(recipe.config(0, arm), precision=precision, dataset="synthetic")
    train = synthetic_split("train", -(-batch * steps // recipe.classes), recipe.image_size, recipe.classes)
    val = synthetic_split("val", -(-batch * 2 // recipe.classes), recipe.image_size, recipe.classes)
    return Trainer(config, data=(train, val), device="cpu")


def settings(recipe, precisions: Iterable[str] = PRECISIONS, arms: bool = True) -> list[tuple[str, str]]:
    """(arm, precision) pairs to time: the baseline in each precision, every other arm that applies to
    the recipe's net in the recipe's own precision (what its runs train in)."""
    from replication.experiments.protocol import ARMS  # here: replication.experiments imports this module

    out = [("baseline", p) for p in precisions]
    if arms:
        out += [(arm, recipe.precision) for arm, delta in ARMS.items()
                if arm != "baseline" and recipe.arch in delta.archs]
    return out


def time_recipe(recipe, steps: int, warmup: int, rounds: int, precisions: Iterable[str] = PRECISIONS,
                arms: bool = True) -> list[dict]:
    """Seconds per training step and per evaluated image of each setting (``settings``), all timed in
    interleaved rounds (load drift falls on every setting alike, so their ratios hold)."""
    shape = run_shape(recipe)
    batch = shape["batch_size"]
    rounds = max(1, min(rounds, steps))
    longest = max(warmup, -(-steps // rounds))
    trainers = {key: _trainer(recipe, *key, batch, longest) for key in settings(recipe, precisions, arms)}
    for trainer in trainers.values():
        if warmup:
            trainer.run_epoch(1, max_steps=warmup)
            trainer.evaluate()
    step_seconds = dict.fromkeys(trainers, 0.0)
    eval_seconds = dict.fromkeys(trainers, 0.0)
    done = dict.fromkeys(trainers, 0.0)
    evaluated = dict.fromkeys(trainers, 0)
    for r in range(rounds):
        chunk = steps // rounds + (1 if r < steps % rounds else 0)
        for key, trainer in trainers.items():
            row = trainer.run_epoch(r + 2, max_steps=chunk)
            step_seconds[key] += row["seconds"]
            done[key] += row["images"] / batch  # the steps that ran, counted from the images trained
            began = time.perf_counter()
            trainer.evaluate()
            eval_seconds[key] += time.perf_counter() - began
            evaluated[key] += len(trainer.val_split)
    rows = []
    for (arm, precision) in trainers:
        per_step = step_seconds[arm, precision] / max(done[arm, precision], 1)
        per_image = eval_seconds[arm, precision] / max(evaluated[arm, precision], 1)
        rows.append({"arm": arm, "precision": precision, "steps_timed": round(done[arm, precision]),
                     "seconds_per_step": per_step, "eval_seconds_per_image": per_image,
                     **run_minutes(shape, per_step, per_image)})
    return rows


def run_minutes(shape: Mapping[str, int], seconds_per_step: float, eval_seconds_per_image: float) -> dict:
    """Minutes of one run: its training steps, and those plus the evaluations after every epoch and the
    final ten-crop test (a baseline's other final measurements, Fig. 4's features and the dropout draws,
    add about as much again)."""
    train = shape["steps_per_epoch"] * shape["epochs"] * seconds_per_step / 60
    evals = (shape["eval_images_per_epoch"] * shape["epochs"] + shape.get("final_eval_images", 0)) \
        * eval_seconds_per_image / 60
    return {"train_minutes_per_run": train, "minutes_per_run": train + evals}


def record_name(record: Mapping[str, Any]) -> str:
    """File name of a record: the CPU, the kernels it ran and the threads, e.g.
    ``amd-epyc_avx512_2t.json`` or ``amd-epyc_avx2-pinned_2t.json``."""
    cpu = re.sub(r"[^a-z0-9]+", "-", record["cpu"].lower()).strip("-") or "cpu"
    kernels = record["cpu_capability"].lower() + ("-pinned" if record["kernels"] != "native" else "")
    return f"{cpu}_{kernels}_{record['threads']}t.json"


def busy_cores(seconds: float = 1.0, stat: Path = Path("/proc/stat")) -> float | None:
    """How many cores other work kept busy over the next ``seconds`` (from /proc/stat's jiffies; None
    where there is no /proc/stat). The load average cannot tell: it trails a stopped job by minutes."""
    def sample():
        fields = [int(v) for v in stat.read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields) - idle, sum(fields)

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    cores = os.cpu_count() or 1
    return cores * (busy1 - busy0) / max(total1 - total0, 1)


def measure(profile: str = "cpu", steps: int = 12, warmup: int = 2, rounds: int = 3,
            precisions: Iterable[str] = PRECISIONS, threads: int | None = None, arms: bool = True,
            progress: bool = True) -> dict:
    """One record: every recipe of ``profile`` timed on this CPU at the recipe's thread count, its
    baseline in each of ``precisions`` and (``arms``) each of its arms in the recipe's precision."""
    from replication.experiments.protocol import recipes_for  # here: replication.experiments imports this module

    recipes = recipes_for(profile)
    threads = threads or recipes[0].threads
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        busy = busy_cores()
        if progress and busy is not None and busy > 0.25:
            print(f"[protocol] warning: other work keeps {busy:.1f} of {os.cpu_count()} cores busy; the record "
                  "will overstate what a run costs. Measure while nothing else runs.", flush=True)
        out = []
        for recipe in recipes:
            if progress:
                print(f"[protocol] {recipe.label}: {steps} steps for each of "
                      f"{len(settings(recipe, precisions, arms))} settings, {threads} threads", flush=True)
            rows = time_recipe(recipe, steps, warmup, rounds, precisions, arms)
            out.append({"recipe": recipe.key, "label": recipe.label, "precision": recipe.precision,
                        **run_shape(recipe), "rows": rows})
            if progress:
                for row in rows:
                    print(f"  {row['arm']}, {row['precision']}: {row['seconds_per_step']:.3f} s a step, "
                          f"{row['minutes_per_run']:.0f} min a run", flush=True)
        load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    finally:
        torch.set_num_threads(previous)
    return {"version": RECORD_VERSION, "profile": profile, "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "kernels": profiles.cpu_kernels(),
            "native_bf16": bf16_is_native(), "threads": threads, "torch": torch.__version__,
            "load_average_start": load_start, "load_average_end": load_end, "busy_cores_before": busy,
            "measured_at": time.strftime("%Y-%m-%d", time.gmtime()), "recipes": out}


def save(record: Mapping[str, Any], folder: Path | None = None) -> Path:
    """Write ``record`` atomically into ``folder`` (default ``benchmarks/protocol``); returns the path."""
    folder = Path(folder or RECORDS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / record_name(record)
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    return path


def load_records(folder: Path | None = None, profile: str | None = None) -> list[dict]:
    """Every record in ``folder`` (JSON only: nothing is unpickled), sorted by file name; only those of
    ``profile``'s recipes when given."""
    folder = Path(folder or RECORDS_DIR)
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err}); run `make cost` again to rewrite it") from None
        if record.get("version") != RECORD_VERSION:
            raise ValueError(f"{path}: record version {record.get('version')!r}, this package reads "
                             f"{RECORD_VERSION}; run `make cost` again to rewrite it")
        if profile is None or record.get("profile") == profile:
            records.append(record)
    return records


def kernels_label(record: Mapping[str, Any]) -> str:
    """'AVX512 (native)' or 'AVX2 (pinned)'; bf16 native or emulated."""
    how = "native" if record["kernels"] == "native" else "pinned"
    bf16 = "bf16 native" if record["native_bf16"] and how == "native" else "bf16 emulated"
    return f"{record['cpu_capability']} ({how}), {bf16}"


def _runs_here(record: Mapping[str, Any], runs: Iterable) -> list:
    """The stored runs trained on the record's machine and kernels at its thread count."""
    if record["kernels"] != "native":
        return []
    return [run for run in runs if (run.summary.get("hardware") or {}).get("cpu") == record["cpu"]
            and (run.summary["hardware"].get("cpu_capability") == record["cpu_capability"])
            and run.summary["hardware"].get("torch_threads") == record["threads"]]


def cost_table(records: Iterable[Mapping[str, Any]], runs_by_recipe: Mapping[str, Iterable] | None = None):
    """One row per record, recipe and precision: seconds a step and the minutes one run takes on that
    CPU, beside the median times of the stored runs (``runs_by_recipe``) trained on the same machine,
    kernels and threads (a check of the estimate; the runs' precision is the recipe's, and a run
    trained beside other work on the machine took longer than the estimate, which was timed alone)."""
    import numpy as np
    import pandas as pd

    runs_by_recipe = runs_by_recipe or {}
    rows = []
    for record in records:
        for entry in record["recipes"]:
            here = _runs_here(record, runs_by_recipe.get(entry["recipe"], []))
            for row in entry["rows"]:
                if row["arm"] != "baseline":
                    continue
                same = [r for r in here if r.config.precision == row["precision"]]
                stored = (f"{np.median([r.summary['train_seconds'] for r in same]) / 60:.0f} / "
                          f"{np.median([r.summary['wall_seconds'] for r in same]) / 60:.0f} ({len(same)} runs)"
                          if same else "—")
                rows.append({"CPU": f"{record['cpu']}, {record['threads']} threads",
                             "kernels": kernels_label(record), "recipe": entry["recipe"],
                             "precision": row["precision"], "s / step": f"{row['seconds_per_step']:.3f}",
                             "training min / run": f"{row['train_minutes_per_run']:.0f}",
                             "with evaluations": f"{row['minutes_per_run']:.0f}",
                             "stored runs here: training / with evaluations, min (median)": stored,
                             "cores busy before": f"{record['busy_cores_before']:.1f}"
                             if record.get("busy_cores_before") is not None else "—",
                             "measured": record.get("measured_at", "?")})
    if not rows:
        return pd.DataFrame({"note": ["no cost record in benchmarks/protocol: run `make cost` (nothing else "
                                      "training) to measure this CPU"]})
    return pd.DataFrame(rows).set_index(["CPU", "kernels", "recipe", "precision"])


def arm_table(records: Iterable[Mapping[str, Any]], arms: Iterable[str] | None = None,
              recipes: Iterable[str] | None = None):
    """Per record and recipe, each arm's training step in the recipe's precision beside the baseline's,
    timed in the same interleaved rounds: seconds a step, the ratio to the baseline, minutes a run."""
    import pandas as pd

    arms = None if arms is None else list(arms)
    rows = []
    for record in records:
        for entry in record["recipes"]:
            if recipes is not None and entry["recipe"] not in recipes:
                continue
            by_arm = {r["arm"]: r for r in entry["rows"] if r["precision"] == entry["precision"]}
            base = by_arm.get("baseline")
            for arm, row in by_arm.items():
                if arms is not None and arm not in arms:
                    continue
                rows.append({"CPU": f"{record['cpu']}, {record['threads']} threads", "kernels": kernels_label(record),
                             "recipe": entry["recipe"], "arm": arm, "precision": row["precision"],
                             "s / step": f"{row['seconds_per_step']:.3f}",
                             "vs baseline": f"{row['seconds_per_step'] / base['seconds_per_step']:.2f}x" if base else "—",
                             "min / run": f"{row['minutes_per_run']:.0f}"})
    if not rows:
        return pd.DataFrame({"note": ["no cost record with these arms in benchmarks/protocol: run `make cost` "
                                      "(nothing else training) to measure this CPU"]})
    return pd.DataFrame(rows).set_index(["CPU", "kernels", "recipe", "arm"])
