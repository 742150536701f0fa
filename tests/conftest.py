"""Shared fixtures.

The real dataset mirrors are found through ``REPLICATION_MIRRORS`` (CI points
it at ``../shared/data``). Outside CI a missing mirror skips the tests that
need it, with the reason; in CI (``CI=true``) it fails them, because CI that
silently skips its real-data checks proves nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Tests run many small models; more threads than cores only adds contention.
# `make test` runs the unit tests a second time with one thread and AVX2 kernels
# (replication.profiles.PORTABLE_CPU_ENV sets REPLICATION_TEST_THREADS=1).
torch.set_num_threads(int(os.environ.get("REPLICATION_TEST_THREADS") or min(2, os.cpu_count() or 1)))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_mirror(archive_name: str) -> Path:
    """Path of a mirrored archive, or skip (fail in CI) naming where we looked."""
    dirs = [Path(d) for d in os.environ.get("REPLICATION_MIRRORS", "").split(os.pathsep) if d]
    for folder in dirs:
        candidate = folder / archive_name
        if candidate.is_file():
            return candidate
    reason = (
        f"dataset mirror {archive_name!r} not found in REPLICATION_MIRRORS={dirs or '(unset)'}; "
        "set REPLICATION_MIRRORS to the folder holding the archives (e.g. ../shared/data)"
    )
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def mirror():
    """``mirror("cifar10-jpeg.tgz")`` -> path of that archive, or skip/fail."""
    return require_mirror


@pytest.fixture
def isolated_store(tmp_path, monkeypatch):
    """A private data root, run store and checkpoint cache for one test."""
    monkeypatch.setenv("REPLICATION_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("REPLICATION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REPLICATION_STORE", str(tmp_path / "runs"))
    monkeypatch.delenv("REPLICATION_STORE_READONLY", raising=False)
    return tmp_path


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread: two OpenMP threads on two shared,
    busy cores wait at barriers and run several times slower. Restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
