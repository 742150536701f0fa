"""Train every run a profile's reports need: ``python -m replication.experiments --profile cpu``.

Each notebook's runs are trained (or found in the store) in an order that makes partial progress
useful, each stored atomically in ``runs/<hash>/`` as it finishes; killed, a run resumes from its
checkpoint. ``--profile smoke`` trains into the scratch store. ``--only`` picks notebooks:

- ``00``: the miniature, dataset by dataset (Imagenette first): the tuning grid on images held out of
  the training set, then the baseline at every seed once the tuning confirms the recipe;
- ``02`` (or one setting, ``02-paper`` / ``02-modern``): Fig. 1's sweeps, then the chosen rates on
  the other seeds;
- ``03``: both halves, or ``03-cifar`` / ``03-imagenet`` (the Tiny ImageNet LRN-off and control arms;
  the LRN arm is notebook 04's nets);
- ``04``, ``05``: the ImageNet-protocol nets and baselines (``training_order``); under torchrun
  every rank trains and rank 0 reports.
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
from replication.experiments import baselines, error_rates, lrn, miniature, pooling, protocol, relu_speedup
from replication.experiments.baselines import BaselineConfig
from replication.experiments.cifar import ACTIVATIONS, SETTINGS, Diverged, fig1_config, get_run, lrn_config
from replication.experiments.imagenet import pct
from replication.experiments.scales import scale_for

CHOICES = ("00", "02", "02-paper", "02-modern", "03", "03-cifar", "03-imagenet", "04", "05")
DEFAULT = ("02", "03", "04", "05")


# ---------------------------------------------------------------------------
# CIFAR-10: notebooks 02 and 03's first half
# ---------------------------------------------------------------------------

def train_cifar(params: Mapping[str, Any], only: Sequence[str], progress: bool = False, log=print) -> None:
    """Train (or find) every CIFAR-10 run of notebooks 02 and 03 for ``params["profile"]``, most
    important first: 02's paper-setting sweep, its chosen rates on the other seeds, the modern
    setting; then 03's runs seed by seed (both arms of a seed before the next seed)."""
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
    if "03" in only or "03-cifar" in only:
        for s in seeds:
            for with_lrn in (True, False):
                fetch(lrn_config(with_lrn, s, profile, epochs, precision), f"03 lrn={with_lrn} seed {s}")


# ---------------------------------------------------------------------------
# The ImageNet protocol: notebooks 03's second half, 04 and 05
# ---------------------------------------------------------------------------

def training_order(params: Mapping[str, Any], only: Sequence[str] = ("04", "05")) -> list:
    """Every config of the chosen notebooks once, ordered so that a notebook completes as early as
    possible: notebook 04's runs (the overlapping Tiny ImageNet seeds, which 05 and 03 share, then the
    baselines and Imagenette), then the rest of 05 (the non-overlapping seeds), then 04's budget check,
    then 03's LRN-off and control seeds."""
    plan4 = error_rates.plan(params) if "04" in only else {}
    plan5 = pooling.plan(params) if "05" in only else {}
    plan3 = lrn.imagenet_plan(params) if "03" in only or "03-imagenet" in only else {}
    first = scale_for(params["profile"]).families[0].key
    order: list = (list(plan4.get(first, [])) + list(plan5.get("overlapping", []))
                   + list(plan3.get("lrn", [])))
    order += plan4.get("baselines", [])
    order += [c for key, configs in plan4.items() if key not in (first, "baselines", "budget_check")
              for c in configs]
    order += plan5.get("non_overlapping", [])
    order += plan4.get("budget_check", [])  # the one long run last: the claims' runs come first
    order += plan3.get("no_lrn", []) + plan3.get("lrn_scale_only", [])
    seen, unique = set(), []
    for config in order:
        ident = (type(config).__name__, config.hash if isinstance(config, BaselineConfig) else config_hash(config))
        if ident not in seen:
            seen.add(ident)
            unique.append(config)
    return unique


def describe(config: TrainConfig | BaselineConfig) -> str:
    """One line naming an ImageNet-protocol run or baseline: dataset, net, seed, epochs, hash."""
    if isinstance(config, BaselineConfig):
        return f"baseline {config.kind} on {config.dataset} ({config.hash})"
    model = config.model
    with_lrn = (", no LRN" if "lrn" in model and model["lrn"] is None
                else ", LRN scale only (alpha 0)" if model.get("lrn_alpha") == 0.0 else "")
    return (f"{config.dataset} {config.crop}px width {model.get('width')} {model.get('pooling')}{with_lrn} "
            f"seed {config.seed}, {config.epochs} epochs ({config_hash(config)})")


def train_imagenet(params: Mapping[str, Any], only: Sequence[str], list_only: bool = False,
                   git_commit: bool = False) -> None:
    """Train (or find) every ImageNet-protocol run of the chosen notebooks, in ``training_order``."""
    order = training_order(params, only)
    scratch = params["profile"] == "smoke"
    is_main = int(os.environ.get("RANK", "0")) == 0  # under torchrun every rank trains, rank 0 reports
    for number, config in enumerate(order, 1):
        if isinstance(config, BaselineConfig):
            path = baselines.record_path(config, scratch)
            stored = path.is_file()
        else:
            path = runs.run_dir(config, runs.scratch_store_dir() if scratch else None)
            stored = (path / "summary.json").is_file()
        if is_main:
            print(f"[{number}/{len(order)}] {'stored ' if stored else 'to train'} {describe(config)}", flush=True)
        if list_only or stored:
            continue
        if isinstance(config, BaselineConfig):
            record = baselines.get(config, scratch=scratch)
            print(f"    top-1 {pct(record['val_top1']):.1f}%  top-5 {pct(record['val_top5']):.1f}%  "
                  f"{record['seconds']:.0f} s -> {path}", flush=True)
        else:
            run = runs.get(config, progress=is_main, device=params["device"], scratch=scratch)
            if not is_main:
                continue
            s = run.summary
            print(f"    ten-crop top-1 {pct(s['ten_crop_top1']):.1f}% top-5 {pct(s['ten_crop_top5']):.1f}%  "
                  f"{s['train_seconds'] / 60:.1f} min -> {run.path}", flush=True)
        if git_commit and not scratch and is_main:
            subprocess.run(["git", "add", str(path)], check=True)
            subprocess.run(["git", "commit", "-m", f"runs: {describe(config)}", "--", str(path)], check=True)


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
            check = protocol.stopping_check([row["val_top1"] for row in run.history])
            print(f"    top-1 {pct(run.summary['val_top1']):.1f}% ({'held-out part of train' if config.holdout_per_class else 'val'}), "
                  f"last {check['window']} epochs gained {pct(check['gain']):.2f} points; "
                  f"{run.summary['train_seconds'] / 60:.1f} min -> {run.path}", flush=True)
            if git_commit and not scratch:
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
        best = miniature.best_of(tuning)
        if miniature.grid_point(best) != {"width": recipe.width, "lr": recipe.lr} or miniature.at_grid_edge(best, tuning):
            print(f"    {recipe.key}: the tuning grid's best is {miniature.grid_point(best)}"
                  f"{' at the edge of the grid (extend the grid)' if miniature.at_grid_edge(best, tuning) else ''}, "
                  f"the recipe says width {recipe.width:g}, lr {recipe.lr:g}: update protocol.py before its "
                  "baselines are trained", flush=True)
            continue
        names = ["baseline", *[a for a in arms if a != "baseline" and recipe.arch in protocol.ARMS[a].archs]]
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
                        help="notebooks whose runs to train (default: 02 03 04 05); 00: the miniature's tuning; 02-paper/02-modern: one "
                             "setting of 02; 03-cifar/03-imagenet: one half of 03")
    parser.add_argument("--seeds", default=None, help="YAML list overriding the profile's seeds, e.g. '[0, 1]'")
    parser.add_argument("--list", action="store_true",
                        help="print the ImageNet-protocol runs, stored or not, and exit")
    parser.add_argument("--arms", nargs="*", default=[], metavar="ARM",
                        help=f"with --only 00: also train these ablation arms beside each baseline seed "
                             f"({', '.join(a for a in protocol.ARMS if a != 'baseline')})")
    parser.add_argument("--datasets", nargs="*", default=None, metavar="KEY",
                        help="with --only 00: only these recipes (imagenette, tiny; default: all)")
    parser.add_argument("--git-commit", action="store_true",
                        help="git add + commit each ImageNet-protocol run folder as soon as it is stored")
    args = parser.parse_args(argv)
    params = profiles.load_profile(args.profile)
    if args.seeds:
        params["seeds"] = yaml.safe_load(args.seeds)
    only = set(args.only)
    if "00" in only:
        train_miniature(params, args.list, args.git_commit, args.arms, args.datasets)
    if not args.list and only & {"02", "02-paper", "02-modern", "03", "03-cifar"}:
        train_cifar(params, only, log=lambda *a: print(*a, flush=True))
    if only & {"03", "03-imagenet", "04", "05"}:
        train_imagenet(params, only, args.list, args.git_commit)
    if not args.list:
        print("all runs done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
