"""What a result was computed with: the machine, its CPU kernels, the software, the commit.

Every run's summary records :func:`environment` (CPU model, cores, threads, the
kernels ATen chose, whether bf16 is native, GPU, versions), and every report
records the git commit and whether the tree was dirty (:func:`git_state`), so a
number can be traced to the code and the hardware that produced it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Sequence

import torch

from replication import __version__
from replication.paths import REPO


def bf16_is_native() -> bool:
    """True when oneDNN has bfloat16 kernels for this CPU (AVX-512 BF16 or AMX).

    Without them bf16 autocast on the CPU is emulated and several times
    slower than fp32 (an AVX2-only CPU, e.g. AMD EPYC Zen 3).
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False



def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device | None = None) -> dict:
    """Hardware and software a run's numbers depend on (recorded in every summary)."""
    device = torch.device(device or "cpu")
    hardware = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                "machine": platform.machine(), "device": str(device), "native_bf16": bf16_is_native(),
                "cpu_capability": torch.backends.cpu.get_cpu_capability()}  # the kernels ATen chose: AVX2, AVX512...
    if device.type == "cuda":
        hardware["gpu"] = torch.cuda.get_device_name(device)
    return {"hardware": hardware,
            "torch": torch.__version__, "python": platform.python_version(),
            "replication": __version__}


def describe_machines(hardware_records: Sequence[dict | None]) -> str:
    """The machines a group of runs was trained on, from their recorded hardware:
    'AMD EPYC, 2 cores, 1 or 2 threads, bf16 native on some'."""
    known = [h for h in hardware_records if h]
    if not known:
        return "not recorded"
    cpus = sorted({f"{h.get('cpu', '?')}, {h.get('cpu_count', '?')} cores" for h in known})
    threads = sorted({h.get("torch_threads") for h in known if h.get("torch_threads")})
    native = {bool(h.get("native_bf16")) for h in known}
    bf16 = {frozenset({True}): "bf16 native", frozenset({False}): "bf16 emulated"}.get(
        frozenset(native), "bf16 native on some")
    gpus = sorted({h["gpu"] for h in known if h.get("gpu")})
    text = ("; ".join(gpus) + " on " if gpus else "") + "; ".join(cpus)
    if threads:
        text += f", {' or '.join(map(str, threads))} thread{'s' if threads != [1] else ''}"
    return f"{text}, {bf16}"



def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty). Dirty means the source differs from the commit; the
    generated ``reports/`` and ``runs/`` are left out of that check."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = _git("status", "--porcelain", "--", ".", ":(exclude)reports", ":(exclude)runs")
    return commit.strip(), (None if status is None else bool(status.strip()))


def process_age_s() -> float | None:
    """Seconds since this process (the notebook's kernel) started; None off Linux."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of proc(5): starttime, in clock ticks since boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def package_version(package: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None
