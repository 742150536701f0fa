"""``python -m replication figures RUN [RUN ...]``: the figures of stored runs, as PNGs.

For each run (a run id, a unique start of one, or a run folder's path), drawn from what the
run store holds, one PNG each into <out>/<run id>/:

  curves      learning_curves.png   training and validation error and loss per epoch, the
                                    epochs where the learning rate was lowered marked
  kernels     conv1_kernels.png     Fig. 3: the conv1 kernels, one block per tower, each kernel
                                    scaled to its own range                  (save_conv1)
  neighbours  neighbours.png        Fig. 4: validation images and their six nearest training
                                    images by FC7 distance; the run stores their indices, the
                                    images are read from its dataset         (neighbours_k, neighbour_queries)
  classes     per_class_error.png   top-1 error of every class, sorted       (per_class_error)

A run that did not store what a figure needs gets a one-line note naming the config setting
(in brackets above) that stores it. Exit status 1 when a figure could not be drawn for
another reason (e.g. Fig. 4's dataset is not on this machine), 0 otherwise.

examples:
  python -m replication figures 1cd42c1e                      one run, all figures, into ./figures/1cd42c1e37fd7240/
  python -m replication figures 1cd42c1e 1a98 --only kernels,classes --out /tmp/figs
  python -m replication figures runs/1cd42c1e37fd7240 --queries 5
  REPLICATION_STORE=~/my-runs python -m replication figures 3f2a
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FIGURES = ("curves", "kernels", "neighbours", "classes")  # engine.run_figures.FIGURES, without importing torch


def _figure_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FIGURES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown figure(s) {unknown or text!r}; choose from {','.join(FIGURES)}")
    return names


def cli_add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="a run id or a unique start of one in the run store (REPLICATION_STORE, default "
                             "./runs), or a run folder's path")
    parser.add_argument("--out", type=Path, default=Path("figures"),
                        help="folder for the PNGs; each run's go into <out>/<run id>/ (default: ./figures, "
                             "which git ignores)")
    parser.add_argument("--only", type=_figure_list, default=list(FIGURES),
                        help=f"comma-separated figures to draw, of {','.join(FIGURES)} (default: all)")
    parser.add_argument("--queries", type=int, default=8,
                        help="Fig. 4: how many of the stored query images to show, one row each (default: 8)")


def _print(run_id: str, drawn) -> None:
    if drawn.error is not None:
        print(f"{run_id} {drawn.figure:<10} error: {drawn.error}", file=sys.stderr, flush=True)
    elif drawn.path is None:
        print(f"{run_id} {drawn.figure:<10} {drawn.note}", flush=True)
    else:
        print(f"{run_id} {drawn.figure:<10} {drawn.path}" + (f"  (note: {drawn.note})" if drawn.note else ""),
              flush=True)


def cli_main(args: argparse.Namespace) -> int:
    from replication.engine import runs  # lazily: torch takes seconds to import; --help stays fast
    from replication.engine.run_figures import draw_run

    if args.queries < 1:
        raise ValueError(f"--queries must be at least 1, got {args.queries}")
    found = [runs.find(reference) for reference in args.runs]  # every name checked before anything is drawn
    failed = 0
    for run in found:
        folder = args.out / run.hash
        outcomes = draw_run(run, folder, args.only, args.queries, report=lambda drawn, h=run.hash: _print(h, drawn))
        failed += sum(drawn.error is not None for drawn in outcomes)
        if any(drawn.path is not None for drawn in outcomes):
            print(f"figures of run {run.hash} in {folder}")
    return 1 if failed else 0
