"""Training and data-path speed on this machine: the engine against the plain PyTorch recipe.

Five parts, each timed in one process with its settings interleaved in rounds,
so that load from other users of a shared machine falls on all settings alike
and cancels in their ratios:

1. ``fig1``, ``tiny``, ``imagenette``: the Fig. 1 CIFAR-10 net, the Tiny
   ImageNet AlexNet family (28 px crops of the 32 px images, 200 classes) and
   the Imagenette family (112 px crops of 128 px, 10 classes), each trained
   three ways:

   - the plain PyTorch recipe: PIL images through torchvision transforms
     (``RandomCrop`` where the family crops, ``RandomHorizontalFlip``,
     ``ToTensor``, ``Normalize``), a ``DataLoader`` with worker processes,
     fp32, NCHW, ``torch.optim.SGD``;
   - this package's engine (``replication.engine.trainer.Trainer.run_epoch``): uint8
     images in memory, a whole batch cropped, flipped and mean-subtracted with
     tensor ops, channels_last, the chosen precision, the paper's SGD;
   - the model-only ceiling: the engine's model, layout and precision on one
     random batch, no data path at all. ``engine / plain`` can approach
     ``ceiling / plain`` but not pass it.

   Both training paths do the same work per image (crop, flip, normalisation;
   no lighting), so the ratio measures the data path, the memory layout and
   the precision, not a difference in augmentation.

2. ``paper``: the paper's AlexNet (two towers, 227 px, 1000 classes) on random
   tensors: training and inference images/s in fp32 and bf16, the FLOP/s this
   achieves, and its fraction of the CPU's fp32 peak, computed as
   ``physical cores used x clock x FLOPs per cycle per core`` with FLOPs per
   cycle = FMA units (2) x fp32 lanes (8 for AVX2, 16 for AVX-512) x 2
   (multiply and add). FLOPs are counted from the conv and linear layers'
   shapes (2 per multiply-add); a training step counts 3x the forward.

3. ``data``: the decode-once cache build (a dataset's JPEGs decoded into a
   uint8 ``.npy`` in a scratch data root, as ``data.load_split`` does on first
   use), and batches/s of Section 4.1's augmentation (random crop, flip, PCA
   lighting, mean subtraction) on whole uint8 batches against the torchvision
   transforms path (PIL, per image, then collated), both in this process.

4. ``protocol``: what one run of each protocol recipe (``--profile``, default ``cpu``) costs on this
   CPU, in fp32 and bf16 at the recipe's thread count: its training step exactly as the trainer runs
   it, and its per-epoch evaluation, on random images of the recipe's shape
   (``replication.bench.protocol``). ``--record-dir benchmarks/protocol`` keeps the record for
   notebook 00; ``make cost`` measures it natively and again pinned to AVX2 kernels.

``--quick`` shortens everything (under two minutes on the project's 2-core
CPU); the numbers then carry more noise but the table has the same rows.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from replication.bench.datapath import data_path
from replication.bench.paper import paper_throughput
from replication.bench import protocol as protocol_cost
from replication.bench.training import FAMILIES, SECTIONS, auto_threads, compare_family, load_average
from replication.profiles import cpu_kernels
from replication.provenance import bf16_is_native, cpu_model


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------


def cli_add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", default=",".join(s for s in SECTIONS if s != "protocol"),
                        help=f"comma-separated parts to run, of {', '.join(SECTIONS)} (default: all but protocol, "
                             "which `make cost` runs)")
    parser.add_argument("--dataset", default="mirrors",
                        help="'mirrors' (each family's own dataset) or 'synthetic' (random images of the same "
                             "shapes; no mirror needed) (default: mirrors)")
    parser.add_argument("--steps", type=int, default=100,
                        help="timed steps per setting for the Fig. 1 net; the AlexNet families time a tenth, the "
                             "paper net a fiftieth (default: 100; --quick: 10)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: 5; --quick: 1)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="interleaved rounds the timed steps are split into (default: 4; --quick: 2)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run (fewer steps, images and smaller AlexNet batches), under 2 minutes")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128, Section 5)")
    parser.add_argument("--paper-batch", type=int, default=None,
                        help="batch of the paper-net throughput runs (default: 32; --quick: 4)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="the engine's precision; 'auto' = bf16 where the CPU has native bf16 kernels, "
                             "else fp32 (default: auto)")
    parser.add_argument("--no-channels-last", action="store_true", help="engine in NCHW (default: channels_last)")
    parser.add_argument("--workers", type=int, default=2,
                        help="DataLoader workers of the plain recipe (default: 2, the PyTorch CIFAR-10 tutorial's)")
    parser.add_argument("--train-images", type=int, default=None,
                        help="use this many training images (default: all; --quick: 10000 CIFAR-10, fewer for "
                             "the AlexNet families)")
    parser.add_argument("--lrn-rows", action="store_true",
                        help="also time each AlexNet family without LRN (model only), to show LRN's cost")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"torch threads (default: the CPUs not already busy at the start, from the 1-minute "
                             f"load average, at least 1, at most os.cpu_count() = {os.cpu_count()}: measured here, "
                             f"2 threads ran the Fig. 1 net at 0.44x the speed of 1 while another process held a core)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    parser.add_argument("--profile", default="cpu",
                        help="the protocol part: whose recipes to time (default: cpu, the committed reports')")
    parser.add_argument("--record-dir", metavar="DIR", default=None,
                        help="the protocol part: write its record (named after the CPU, its kernels and the "
                             "threads) into DIR; notebook 00 reads benchmarks/protocol (default: not written)")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the results as JSON (default: no)")


def cli_main(args: argparse.Namespace) -> int:
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"bench: unknown part(s) {unknown}; choose from {list(SECTIONS)}")
    if args.dataset not in ("mirrors", "synthetic"):  # the earlier option: a dataset name for the Fig. 1 net
        args.dataset = "mirrors"
    if args.quick:
        args.steps, args.warmup, args.rounds = min(args.steps, 10), min(args.warmup, 1), min(args.rounds, 2)
    began = time.perf_counter()
    torch.set_num_threads(args.threads or auto_threads())
    native = bf16_is_native()
    precision = args.precision if args.precision != "auto" else ("bf16" if native else "fp32")
    channels_last = not args.no_channels_last
    print(f"bench{' --quick' if args.quick else ''}: {torch.get_num_threads()} threads on {cpu_model()} "
          f"({os.cpu_count()} CPUs); native bf16: {'yes' if native else 'no'}; engine precision {precision}, "
          f"{'channels_last' if channels_last else 'NCHW'}; torch {torch.__version__}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; load average (1/5 min) {load_average()}",
          flush=True)
    record: dict = {"cpu": cpu_model(), "threads": torch.get_num_threads(), "native_bf16": native,
                    "precision": precision, "torch": torch.__version__, "quick": bool(args.quick),
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_average_start": load_average()}
    comparisons = []
    for key in ("fig1", "tiny", "imagenette"):
        if key in wanted:
            comparisons.append(compare_family(FAMILIES[key], args, precision, channels_last))
    if comparisons:
        record["comparisons"] = [{"family": c.family, "batch": c.batch, "engine_over_plain": c.ratio,
                                  "ceiling_over_plain": c.ceiling, "rows": [r.__dict__ for r in c.rows],
                                  "load_average": c.load_after} for c in comparisons]
    if "paper" in wanted:
        record["paper"] = paper_throughput(args)
    if "data" in wanted:
        record["data"] = data_path(args)
    if "protocol" in wanted:
        steps, warmup, rounds = (1, 0, 1) if args.quick else (12, 2, 3)
        print(f"\n[protocol] one run of each {args.profile} recipe on this CPU ({cpu_kernels()} "
              f"kernels, {torch.backends.cpu.get_cpu_capability()}); load average {load_average()}", flush=True)
        cost = protocol_cost.measure(args.profile, steps=steps, warmup=warmup, rounds=rounds,
                                     threads=args.threads)
        record["protocol"] = cost
        if args.record_dir:
            print(f"[protocol] record written to {protocol_cost.save(cost, args.record_dir)}")
    if comparisons:
        print(f"\nsummary: engine vs plain PyTorch recipe ({precision}, "
              f"{'channels_last' if channels_last else 'NCHW'}; plain = fp32 NCHW)")
        print(f"{'family':<58} {'batch':>5} {'plain':>7} {'engine':>7} {'ratio':>7} {'ceiling':>8} "
              f"{'ceiling':>8} {'load':>9}")
        print(f"{'':<58} {'':>5} {'img/s':>7} {'img/s':>7} {'':>7} {'img/s':>8} {'ratio':>8} {'1/5 min':>9}")
        for c in comparisons:
            print(f"{c.title:<58} {c.batch:>5} {c.rows[0].images_per_s:>7.1f} {c.rows[1].images_per_s:>7.1f} "
                  f"{c.ratio:>6.2f}x {c.rows[2].images_per_s:>8.1f} {c.ceiling:>7.2f}x {c.load_after:>9}")
        fig1 = next((c for c in comparisons if c.family == "fig1"), None)
        if fig1 is not None:
            print(f"engine / plain recipe (Fig. 1 net): {fig1.ratio:.2f}x (target 3x; model-only ceiling "
                  f"{fig1.ceiling:.2f}x){'' if fig1.ratio >= 3 else '  -- below target'}")
    if not native:
        print("note: this CPU has no native bfloat16 kernels (no AVX-512 BF16/AMX): bf16 autocast is emulated "
              "and much slower than fp32 here, so 'auto' picks fp32 for the engine.")
    if torch.get_num_threads() > 1 and os.getloadavg()[0] > (os.cpu_count() or 1) / 2 \
            and "OMP_WAIT_POLICY" not in os.environ:
        print("note: the machine is busy; spinning OpenMP threads then slow every setting down. Rerun with "
              "OMP_WAIT_POLICY=PASSIVE (set before Python starts) or --threads 1.")
    seconds = time.perf_counter() - began
    record["seconds"] = seconds
    record["load_average_end"] = load_average()
    print(f"bench took {seconds:.0f} s; load average (1/5 min) {load_average()}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(record, handle, indent=1, default=str)
    return 0
