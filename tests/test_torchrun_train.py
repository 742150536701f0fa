"""The training entry point under torchrun (Section 3.2's scale-out, data-parallel here).

`python -m replication train` launched by `torchrun --nproc_per_node=2` on the
CPU (gloo) must train one run, shard the data over the ranks, and store the
run exactly once (rank 0), with the world size recorded in its summary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


pytestmark = pytest.mark.slow


def test_train_cli_under_torchrun_stores_one_run(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = shutil.which("torchrun")
    assert torchrun, "torchrun is installed with torch; the venv lacks it"
    env = {**os.environ, "REPLICATION_STORE": str(tmp_path / "runs"),
           "REPLICATION_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    env.pop("REPLICATION_STORE_READONLY", None)
    command = [str(torchrun), "--nproc_per_node=2", "--master_port=29533", "-m", "replication", "train",
               "--dataset", "synthetic", "--image-size", "16", "--train-per-class", "8",
               "--val-per-class", "2", "--batch-size", "16", "--epochs", "2", "--lr", "0.001",
               "--model", "{arch: fig1, paper_init: false}", "--no-progress", "--threads", "1"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    stored = [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]
    assert len(stored) == 1, f"expected one stored run, found {stored}"
    summary = json.loads((stored[0] / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs"] == 2
    assert done.stdout.count("stored in") == 1
