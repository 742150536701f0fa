"""Where things live, and the one way the package writes a file.

Folders (each overridable by an environment variable, README's settings table):

- the data root, ``$REPLICATION_DATA`` or ``<repo>/data``: extracted datasets and decoded caches;
- the mirror folders, ``$REPLICATION_MIRRORS`` (``:``-separated): read-only dataset archives;
- the committed data sample, ``<repo>/data/sample`` (``replication.data.sample``);
- the run store, ``$REPLICATION_STORE`` or ``<repo>/runs``: finished runs, committed (what the
  notebooks read and fill);
- the user store, ``$REPLICATION_STORE`` or ``$XDG_DATA_HOME/replication/runs`` (default
  ``~/.local/share/replication/runs``): where ``python -m replication train`` stores your runs,
  outside the repository, unless told ``--project-store``;
- the cache, ``$REPLICATION_CACHE`` or ``<repo>/.cache/replication``: checkpoints, never committed.

Every file the package writes goes through :func:`atomic_file` (or a helper built
on it): the content is written to a hidden partial file in the same folder and
renamed over the target only when complete, so a kill, a full disk or an
exception never leaves half a file where a later run would trust it. Partial
files carry the writer's pid, and :func:`remove_stale_partials` deletes those
whose writer is gone.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "data" / "sample"
DEFAULT_STORE = REPO / "runs"
DEFAULT_CACHE = REPO / ".cache" / "replication"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def env_flag(name: str) -> bool:
    """A boolean setting from the environment: 1/true/yes/on or 0/false/no/off (any case),
    unset or empty meaning off. Anything else is an error naming the variable."""
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={os.environ[name]!r}: expected 1, true, yes or on (or 0, false, no, off)")


# ---------------------------------------------------------------------------
# Folders
# ---------------------------------------------------------------------------

def data_root() -> Path:
    """The writable data root: $REPLICATION_DATA, else <repo>/data."""
    env = os.environ.get("REPLICATION_DATA")
    return Path(env).expanduser() if env else REPO / "data"


def mirror_dirs() -> list[Path]:
    """Folders of read-only archives from $REPLICATION_MIRRORS (os.pathsep-separated)."""
    value = os.environ.get("REPLICATION_MIRRORS", "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part]


def sample_dir() -> Path:
    """The committed sample's folder, ``<repo>/data/sample`` (see replication.data.sample)."""
    return SAMPLE_DIR


def store_dir() -> Path:
    """Where finished runs are stored: ``$REPLICATION_STORE`` or ``<repo>/runs``."""
    return Path(os.environ.get("REPLICATION_STORE") or DEFAULT_STORE)


def user_store_dir() -> Path:
    """Where ``python -m replication train`` stores runs unless told otherwise: ``$REPLICATION_STORE``,
    else ``$XDG_DATA_HOME/replication/runs`` (``~/.local/share/replication/runs``), outside the
    repository, so a user's own runs never land among the project's committed ones. (A data
    folder rather than a cache: stored runs are results, and are not rebuilt for free.)"""
    env = os.environ.get("REPLICATION_STORE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "replication" / "runs"


def cache_dir() -> Path:
    """Where checkpoints live: ``$REPLICATION_CACHE`` or ``<repo>/.cache/replication``."""
    return Path(os.environ.get("REPLICATION_CACHE") or DEFAULT_CACHE)


def scratch_store_dir() -> Path:
    """The uncommitted store for throw-away runs (the smoke profile): ``<cache>/scratch-runs``."""
    return cache_dir() / "scratch-runs"


# ---------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() gives a new file


def partial_name(final: Path) -> Path:
    """A hidden sibling of ``final`` for writing it: ``.partial-<name>-<pid>-<random>``."""
    final = Path(final)
    return final.with_name(f".partial-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(folder: Path, final_name: str | None = None) -> None:
    """Delete leftovers of killed writers (``.partial-<name>-<pid>-*``) whose process is gone."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    name = re.escape(final_name) if final_name else ".+"
    for leftover in folder.glob(f".partial-{final_name or ''}*"):
        match = re.fullmatch(rf"\.partial-{name}-(\d+)-[0-9a-f]+", leftover.name)
        if match and not _pid_alive(int(match.group(1))):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: Path, fsync: bool = False) -> Iterator[Path]:
    """``with atomic_file(path) as tmp: write tmp`` -> ``path`` appears complete, or not at all.

    ``fsync`` flushes the file to disk before the rename (checkpoints: a crash of the
    machine must not leave a renamed but empty file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(path)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        if fsync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextmanager
def atomic_dir(path: Path, complete_marker: str | None = None) -> Iterator[Path]:
    """``with atomic_dir(path) as tmp: fill tmp`` -> the folder ``path`` appears complete, or not at all.

    An existing ``path`` is replaced (a stale, incomplete one), unless it holds
    ``complete_marker``: then another process finished it meanwhile, and it is kept.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(path)
    tmp.mkdir()
    try:
        yield tmp
        if complete_marker and (path / complete_marker).exists():
            return
        if path.exists():
            shutil.rmtree(path)
        os.rename(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
