"""Part 2 of `python -m replication bench`: the paper's AlexNet at 227 px, its FLOP/s against the CPU's fp32 peak."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from replication import models
from replication.bench.training import ModelOnly, load_average, measure
from replication.models import LocallyConnected2d

# --------------------------------------------------------------------------
# 2. the paper's AlexNet at 227: FLOP/s against the CPU's peak
# --------------------------------------------------------------------------


def forward_flops(model: nn.Module, x: torch.Tensor) -> float:
    """FLOPs of one forward pass per image: 2 per multiply-add of every conv, locally connected and linear layer."""
    total = [0.0]

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total[0] += 2.0 * output.numel() * k
        elif isinstance(module, nn.Linear):
            total[0] += 2.0 * output.numel() * module.in_features
        elif isinstance(module, LocallyConnected2d):
            total[0] += 2.0 * output.numel() * inputs[0].shape[1] * module.kernel_size ** 2

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear, LocallyConnected2d))]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total[0] / x.shape[0]


@dataclass
class Peak:
    cores: int
    ghz: float
    lanes: int
    fma_units: int
    source: str

    @property
    def flops(self) -> float:
        return self.cores * self.ghz * 1e9 * self.fma_units * self.lanes * 2

    def describe(self) -> str:
        return (f"{self.cores} cores x {self.ghz:.2f} GHz x {self.fma_units} FMA units x {self.lanes} fp32 lanes x 2 "
                f"= {self.flops / 1e9:.0f} GFLOP/s fp32 ({self.source})")


def cpu_peak(threads: int, fma_units: int = 2) -> Peak:
    """This CPU's fp32 peak: physical cores used x clock x FMA units x SIMD lanes x 2 FLOPs per FMA."""
    flags, mhz, max_mhz, threads_per_core = set(), None, None, 1
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("cpu MHz") and mhz is None:
                mhz = float(line.split(":", 1)[1])
    except OSError:
        pass
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        found = re.search(r"CPU max MHz:\s*([\d.]+)", lscpu)
        max_mhz = float(found.group(1)) if found else None
        found = re.search(r"Thread\(s\) per core:\s*(\d+)", lscpu)
        threads_per_core = int(found.group(1)) if found else 1
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags or "avx" in flags else 4
    units = fma_units if "fma" in flags or "avx512f" in flags else 1
    cores = max(1, min(threads, (os.cpu_count() or 1) // max(1, threads_per_core)))
    ghz = (max_mhz or mhz or 2000.0) / 1000
    source = ("lscpu max clock" if max_mhz else "/proc/cpuinfo clock, base or current (no max given)") + \
             f"; {'AVX-512' if lanes == 16 else 'AVX2' if lanes == 8 else 'SSE'}{'+FMA' if units > 1 else ''}"
    return Peak(cores, ghz, lanes, units, source)


def paper_throughput(args) -> dict:
    batch = args.paper_batch or (4 if args.quick else 32)
    steps = 1 if args.quick else max(2, args.steps // 50)
    spec = {"arch": "alexnet"}  # two towers, 227 px, 1000 classes, LRN: the paper's net
    model = models.build_model(spec)
    flops = forward_flops(model, torch.randn(1, 3, 227, 227))
    del model
    peak = cpu_peak(torch.get_num_threads())
    print(f"\n[paper] the paper's AlexNet (two towers, 227 px, 1000 classes), channels_last, batch {batch}, "
          f"{steps} timed steps after 1 warm-up; forward {flops / 1e9:.2f} GFLOP per image (2 per multiply-add), "
          f"a training step counted as 3x; peak {peak.describe()}; load average {load_average()}", flush=True)
    rows = []
    for precision in ("fp32", "bf16"):
        for train in (True, False):
            setups = [ModelOnly(batch, precision, True, args.seed, spec, 227, 1000, train=train,
                                name=f"paper AlexNet 227, {'training' if train else 'inference'}")]
            rows += measure(setups, steps, 1, 1)
    out = []
    print(f"{'mode':<10} {'precision':<9} {'batch':>5} {'images/s':>9} {'GFLOP/s':>8} {'of fp32 peak':>12}")
    for row in rows:
        mode = "training" if "training" in row.name else "inference"
        achieved = row.images_per_s * flops * (3 if mode == "training" else 1)
        out.append({"mode": mode, "precision": row.precision, "batch": row.batch, "images_per_s": row.images_per_s,
                    "gflops": achieved / 1e9, "fraction_of_peak": achieved / peak.flops})
        print(f"{mode:<10} {row.precision:<9} {row.batch:>5} {row.images_per_s:>9.2f} {achieved / 1e9:>8.1f} "
              f"{achieved / peak.flops:>11.1%}", flush=True)
    print(f"(load average {load_average()})")
    return {"forward_gflop_per_image": flops / 1e9, "peak_gflops": peak.flops / 1e9, "peak": peak.describe(),
            "rows": out, "load_average": load_average()}
