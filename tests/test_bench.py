"""`python -m replication bench --quick` runs and prints its tables (a tiny setting; the numbers are not checked).

Benchmarks are not tests: this only proves the command, its parts and its
output format work, on synthetic images so that no dataset mirror is needed.
"""

from __future__ import annotations

import json

import torch

from replication import bench
from replication.__main__ import main


def test_bench_quick_prints_its_tables(capsys, tmp_path):
    before = torch.get_num_threads()
    out_json = tmp_path / "bench.json"
    try:
        code = main(["bench", "--quick", "--dataset", "synthetic", "--steps", "2", "--warmup", "1",
                     "--train-images", "256", "--batch-size", "8", "--paper-batch", "1", "--workers", "0",
                     "--threads", "1", "--json", str(out_json)])
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert code == 0
    for words in ("plain recipe", "this engine", "model only", "images/s", "vs plain", "engine / plain",
                  "model-only ceiling", "Tiny ImageNet AlexNet", "Imagenette AlexNet", "summary",
                  "the paper's AlexNet", "of fp32 peak", "GFLOP/s",
                  "FMA units", "augmentation", "torchvision b/s", "load average"):
        assert words in out, words
    assert "1.00x" in out  # the plain recipe's own row
    record = json.loads(out_json.read_text())
    assert {c["family"] for c in record["comparisons"]} == {"fig1", "tiny", "imagenette"}
    assert {(r["mode"], r["precision"]) for r in record["paper"]["rows"]} == {
        ("training", "fp32"), ("inference", "fp32"), ("training", "bf16"), ("inference", "bf16")}


def test_flop_count_of_the_paper_net():
    """About 0.72 G multiply-adds per 227 px image for the two-tower net (conv 0.67 G, FC 0.06 G)."""
    from replication import models

    flops = bench.forward_flops(models.build_model({"arch": "alexnet"}), torch.randn(1, 3, 227, 227))
    assert 1.3e9 < flops < 1.6e9


def test_cpu_peak_is_cores_times_clock_times_fma_width():
    peak = bench.cpu_peak(threads=1)
    assert peak.cores == 1 and peak.flops == peak.ghz * 1e9 * peak.fma_units * peak.lanes * 2
    assert "FMA" in peak.describe() or "SSE" in peak.describe()
