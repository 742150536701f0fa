"""Train every run a profile's reports need: ``python -m replication.experiments --profile cpu``.

Runs are trained (or found in the store) one at a time, in an order that makes partial progress
useful, each stored atomically in ``runs/<hash>/`` as it finishes; killed, a run resumes from its
checkpoint. ``--profile smoke`` trains into the scratch store. ``--only`` picks what to train:

- ``00``: the paired protocol (notebooks 00 and 03-08), dataset by dataset: the tuning grid on images
  held out of the training set, then, seed by seed, the baseline and the ``--arms`` once the tuning
  confirms the recipe (``make protocol`` runs the whole queue);
- ``02`` (or one setting, ``02-paper`` / ``02-modern``): Fig. 1's sweeps, grown until each
  activation's fastest rate is bracketed, then the chosen rates on the other seeds;
- ``04``: Table 1's classical methods on the ImageNet stand-in's images (``protocol.CLASSICAL``).

Under torchrun every rank trains and rank 0 reports and commits.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any, Mapping, Sequence

import yaml

from replication import profiles
from replication.engine import runs
from replication.engine.config import TrainConfig, config_hash
from replication.experiments import baselines, miniature, protocol, relu_speedup
from replication.experiments.cifar import ACTIVATIONS, SETTINGS, Diverged, fig1_config, get_run
from replication.experiments.paired import pct

CHOICES = ("00", "02", "02-paper", "02-modern", "04")
DEFAULT = ("00", "02", "04")


# ---------------------------------------------------------------------------
# CIFAR-10: notebooks 02 and 03's first half
# ---------------------------------------------------------------------------

def train_fig1(params: Mapping[str, Any], only: Sequence[str], progress: bool = False, log=print) -> None:
    """Train (or find) every run of notebook 02 for ``params["profile"]``: each setting's sweep on the
    first seed, grown until bracketed, then its chosen rates on the other seeds."""
    profile = params["profile"]
    seeds, epochs, precision = params["seeds"], params["epochs"], params["precision"]

    def fetch(config, what):
        began = time.time()
        log(f"[{time.strftime('%H:%M:%S')}] {what} {config_hash(config)} ...")
        run = get_run(config, profile, progress)
        status = "diverged" if isinstance(run, Diverged) else \
            f"{len(run.history)} epochs, to 25%: {relu_speedup.run_epochs_to_threshold(run)}" \
            if config.stop_at_train_error else f"{len(run.history)} epochs, val top-1 {run.summary['val_top1']:.4f}"
        log(f"[{time.strftime('%H:%M:%S')}]   done in {time.time() - began:.0f} s: {status}")
        return run

    for setting in [s for s in SETTINGS if "02" in only or f"02-{s}" in only]:
        sweep = relu_speedup.run_sweep(setting, profile, seeds[0], lambda config, what: fetch(config, f"02 {what}"),
                                       epochs, precision)
        chosen = {a: relu_speedup.choose_lr(sweep, a) for a in ACTIVATIONS}
        log(f"02 {setting}: chosen {chosen}")
        for s in seeds[1:]:
            for a in ACTIVATIONS:
                fetch(fig1_config(setting, a, chosen[a], s, profile, epochs, precision),
                      f"02 {setting} {a} lr {chosen[a]:g} seed {s}")


# ---------------------------------------------------------------------------
# The paired protocol (notebooks 00, 03-08) and Table 1's classical methods (04)
# ---------------------------------------------------------------------------

def train_classical(params: Mapping[str, Any], list_only: bool = False, git_commit: bool = False) -> None:
    """Table 1's classical methods on the images of the profile's ImageNet stand-in (``protocol.CLASSICAL``)."""
    scratch = params["profile"] == "smoke"
    for config in protocol.CLASSICAL.get(params["profile"], ()):
        path = baselines.record_path(config, scratch)
        print(f"{'stored ' if path.is_file() else 'to train'} classical {config.kind} on {config.dataset} "
              f"({config.hash})", flush=True)
        if list_only or path.is_file():
            continue
        record = baselines.get(config, scratch=scratch, progress=True)
        print(f"    top-1 {pct(record['val_top1']):.1f}%  top-5 {pct(record['val_top5']):.1f}%  "
              f"{record['seconds']:.0f} s -> {path}", flush=True)
        if git_commit and not scratch:
            subprocess.run(["git", "add", str(path)], check=True)
            subprocess.run(["git", "commit", "-q", "-m", f"runs: classical {config.kind} ({config.hash})", "--",
                            str(path)], check=True)


def arms_of(recipe: protocol.Recipe, arms: Sequence[str]) -> list[str]:
    """What a recipe trains at each seed: its baseline, then each of ``arms`` that applies to its net
    (``Arm.archs``: the AlexNet arms skip CIFAR-10's conv-local net), in the order given."""
    return ["baseline", *[a for a in arms if a != "baseline" and recipe.arch in protocol.ARMS[a].archs]]


def train_miniature(params: Mapping[str, Any], list_only: bool = False, git_commit: bool = False,
                    arms: Sequence[str] = (), datasets: Sequence[str] | None = None) -> None:
    """The protocol's runs, dataset by dataset: the tuning grid on the held-out split, then, seed by
    seed, the baseline and each of ``arms`` -- but only once the tuning confirms the recipe (its
    width and learning rate are the grid's best, inside the grid), so that no baseline or arm is
    trained with a recipe the tuning has not chosen. Seed by seed, so that every finished seed adds
    a complete pair to each claim. ``datasets``: recipe keys to train (default: all)."""
    scratch = params["profile"] == "smoke"
    store = runs.scratch_store_dir() if scratch else None

    def step(label: str, config: TrainConfig, number: str) -> Any:
        path = runs.run_dir(runs.identify(config), store)
        stored = (path / "summary.json").is_file()
        print(f"[{number}] {'stored ' if stored else 'to train'} {label} ({path.name})", flush=True)
        if list_only and not stored:
            return None
        run = runs.get(config, progress=not stored, device=params["device"], scratch=scratch)
        if not stored:
            check = protocol.runs_stopping([run])
            gained = (f"last {check['window']} epochs gained {pct(check['gain']):.2f} points" if check["gain"] is not None
                      else check["why"])
            print(f"    top-1 {pct(run.summary['val_top1']):.1f}% ({'held-out part of train' if config.holdout_per_class else 'val'}), "
                  f"{gained}; "
                  f"{run.summary['train_seconds'] / 60:.1f} min -> {run.path}", flush=True)
            if git_commit and not scratch and int(os.environ.get("RANK", "0")) == 0:  # torchrun: rank 0 commits
                subprocess.run(["git", "add", str(run.path)], check=True)
                subprocess.run(["git", "commit", "-q", "-m", f"runs: {label} ({run.hash})", "--", str(run.path)],
                               check=True)
        return run

    unknown = sorted(set(arms) - set(protocol.ARMS))
    if unknown:
        raise SystemExit(f"unknown arm(s) {unknown}; known: {', '.join(protocol.ARMS)}")
    for recipe in protocol.recipes_for(params["profile"]):
        if datasets and recipe.key not in datasets:
            continue
        tuning = []
        for i, config in enumerate(recipe.tuning_configs(), 1):
            tuning.append(step(f"tuning {recipe.key}: width {config.model.get('width', 1.0):g}, lr {config.lr:g}, "
                               f"{config.epochs} epochs", config, f"{recipe.key} tuning {i}/{len(recipe.tuning_grid)}"))
        if any(run is None for run in tuning):
            continue  # --list: the grid is not complete, nothing to confirm
        best = miniature.best_of(tuning) if tuning else None  # no grid: the paper's own recipe, not tuned
        if best is not None and miniature.grid_point(best) != {"width": recipe.width, "lr": recipe.lr} or miniature.at_grid_edge(best, tuning):
            print(f"    {recipe.key}: the tuning grid's best is {miniature.grid_point(best)}"
                  f"{' at the edge of the grid (extend the grid)' if miniature.at_grid_edge(best, tuning) else ''}, "
                  f"the recipe says width {recipe.width:g}, lr {recipe.lr:g}: update protocol.py before its "
                  "baselines are trained", flush=True)
            continue
        names = arms_of(recipe, arms)
        for i, seed in enumerate(params["seeds"], 1):
            for arm in names:
                step(f"{arm} {recipe.key}: seed {seed}, {recipe.epochs} epochs", recipe.config(seed, arm),
                     f"{recipe.key} seed {i}/{len(params['seeds'])}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m replication.experiments",
        description="Train (resumably) and store every run the chosen notebooks need at a profile.")
    parser.add_argument("--profile", default="cpu", help="smoke, cpu (default) or paper")
    parser.add_argument("--only", nargs="+", default=list(DEFAULT), choices=CHOICES,
                        help="what to train (default: 00 02 04): 00 the paired protocol, 02 Fig. 1, 04 the classical methods; 02-paper/02-modern: one "
                             "setting of 02")
    parser.add_argument("--seeds", default=None, help="YAML list overriding the profile's seeds, e.g. '[0, 1]'")
    parser.add_argument("--list", action="store_true",
                        help="print the ImageNet-protocol runs, stored or not, and exit")
    parser.add_argument("--arms", nargs="*", default=[], metavar="ARM",
                        help=f"with --only 00: also train these ablation arms beside each baseline seed "
                             f"({', '.join(a for a in protocol.ARMS if a != 'baseline')})")
    parser.add_argument("--datasets", nargs="*", default=None, metavar="KEY",
                        help="with --only 00: only these recipes (imagenette, cifar; default: all)")
    parser.add_argument("--git-commit", action="store_true",
                        help="git add + commit each ImageNet-protocol run folder as soon as it is stored")
    args = parser.parse_args(argv)
    params = profiles.load_profile(args.profile)
    if args.seeds:
        params["seeds"] = yaml.safe_load(args.seeds)
    only = set(args.only)
    if "00" in only:
        train_miniature(params, args.list, args.git_commit, args.arms, args.datasets)
    if not args.list and only & {"02", "02-paper", "02-modern"}:
        train_fig1(params, only, log=lambda *a: print(*a, flush=True))
    if "04" in only:
        train_classical(params, args.list, args.git_commit)
    if not args.list:
        print("all runs done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
