"""`python -m replication bench` runs and prints its table (a tiny setting; the numbers are not checked)."""

from __future__ import annotations

import torch

from replication.__main__ import main


def test_bench_quick_prints_its_table(capsys):
    before = torch.get_num_threads()
    try:
        code = main(["bench", "--quick", "--dataset", "synthetic", "--steps", "2", "--warmup", "1",
                     "--train-images", "256", "--batch-size", "16", "--workers", "0", "--threads", "1"])
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert code == 0
    for words in ("plain recipe", "this engine", "model only", "images/s", "vs plain", "engine / plain recipe"):
        assert words in out, words
    assert "1.00x" in out  # the plain recipe's own row
