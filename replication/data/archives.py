"""Archives -> data root (paper Section 2): finding a release, checking it, extracting it.

A release is looked for as an extracted folder (a folder you supply, the data root,
the mirrors) and then as an archive (data root, then mirrors). An archive is checked
against its registered size and sha256 (or md5) once, remembered in
<root>/.verified/, and extracted atomically into the writable data root; mirrors
are never written to. When nothing is found, the error lists every place looked at
and how to get each release.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from replication.data.layouts import LAYOUTS, _layout_problem
from replication.data.registry import (SAMPLE_LABEL, Archive, ChecksumError, CorruptArchiveError, DataError,
                                       DatasetNotFoundError, DatasetSpec, Variant)
from replication.paths import (REPO, atomic_file, atomic_write_text, mirror_dirs, partial_name, remove_stale_partials,
                               sample_dir)


# --------------------------------------------------------------------------- checksums


def _file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(root: Path, archive: Path) -> Path:
    key = hashlib.sha256(str(archive.resolve()).encode()).hexdigest()[:12]
    return root / ".verified" / f"{archive.name}.{key}.json"


def _expected_sum(archive: Archive) -> tuple[str, str] | None:
    if archive.sha256:
        return "sha256", archive.sha256
    if archive.md5:
        return "md5", archive.md5
    return None


def _how_to_get(spec: DatasetSpec, variant: Variant) -> str:
    archive = variant.archive
    if spec.folder is not None:
        return (f"put your images in {spec.folder} as train/<class>/ and val/<class>/ folders, or as one "
                f"folder a class (split into train and val by a fixed seed)")
    if spec.env_var:
        return (
            f"obtain ILSVRC-2012 from https://image-net.org (registration), lay it out as "
            f"<dir>/train/<wnid>/*.JPEG and <dir>/val/<wnid>/*.JPEG, then set {spec.env_var}=<dir> "
            f"or pass --path <dir>"
        )
    if archive and archive.url:
        return (
            f"run `python -m replication data prepare {spec.name} --download` (fetches {archive.url}), "
            f"or put {archive.filename} into the data root or a mirror folder"
        )
    if archive:
        return (
            f"copy {archive.filename} from the project's mirror folder (e.g. ../shared/data) into the "
            f"data root, or set REPLICATION_MIRRORS to that folder (e.g. "
            f"REPLICATION_MIRRORS=../shared/data)"
        )
    return "see the project README"


def verify_archive(path: Path, archive: Archive, root: Path | None = None, force: bool = False) -> str:
    """Check ``path`` against the registered size and sha256 (or md5); returns the digest.

    A passing check is remembered in <root>/.verified/ keyed by path, size and mtime,
    so an unchanged archive is hashed once. Raises ChecksumError naming the file.
    """
    expected = _expected_sum(archive)
    stat = path.stat()
    how = ("delete it and copy/download it again" + (f" from {archive.url}" if archive.url else ""))
    if archive.nbytes is not None and stat.st_size != archive.nbytes:
        raise ChecksumError(
            f"{path} is {stat.st_size:,} bytes, expected {archive.nbytes:,} for {archive.filename}: "
            f"the file is incomplete or not the registered archive; {how}"
        )
    if expected is None:
        return ""
    algorithm, want = expected
    stamp = _stamp_path(root, path) if root is not None else None
    record = {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
              "algorithm": algorithm, "digest": want}
    if stamp is not None and not force and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == record:
                return want
        except (OSError, ValueError):
            pass
    got = _file_digest(path, algorithm)
    if got != want:
        raise ChecksumError(
            f"{path}: {algorithm} is {got}, expected {want} ({archive.filename}). "
            f"The file is corrupt or a different release; {how}"
        )
    if stamp is not None:
        try:
            atomic_write_text(stamp, json.dumps(record, indent=1))
        except OSError:
            pass  # a read-only root only costs a re-hash next time
    return got


def _stamp_ok(root: Path, archive_path: Path, archive: Archive) -> bool:
    expected = _expected_sum(archive)
    stamp = _stamp_path(root, archive_path)
    if expected is None or not stamp.is_file():
        return False
    try:
        record = json.loads(stamp.read_text())
        stat = archive_path.stat()
    except (OSError, ValueError):
        return False
    return (record.get("size"), record.get("mtime_ns"), record.get("digest")) == (
        stat.st_size, stat.st_mtime_ns, expected[1])


# --------------------------------------------------------------------------- extraction


_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error)


def _extract_members(archive: Path, dest: Path, progress: bool) -> None:
    desc = f"extract {archive.name}"
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in tqdm(zf.infolist(), desc=desc, unit="file", disable=not progress):
                zf.extract(info, dest)
        return
    with tarfile.open(archive, "r:*") as tf:
        members = tqdm(tf, desc=desc, unit="file", disable=not progress)
        tf.extractall(dest, members=members, filter="data")


def _ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = partial_name(folder / "write-probe")
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise DataError(
            f"cannot write to {folder} ({error.strerror}); point REPLICATION_DATA (or --root) at a "
            "writable folder: archives are extracted and caches written there, never next to a mirror"
        ) from error


def extract_archive(archive: Path, target: Path, progress: bool = True) -> Path:
    """Extract ``archive`` so that its contents end up as the folder ``target``, atomically.

    The archive is unpacked into a hidden temporary folder next to ``target`` and
    renamed into place only after every member was read, so a failure (truncated
    file, full disk, Ctrl-C) leaves no folder that a later call would trust.
    An archive with one top-level folder has that folder renamed to ``target``.
    """
    _ensure_writable(target.parent)
    remove_stale_partials(target.parent, target.name)
    tmp = partial_name(target)
    tmp.mkdir()
    try:
        try:
            _extract_members(archive, tmp, progress)
        except _ARCHIVE_ERRORS as error:
            raise CorruptArchiveError(
                f"cannot extract {archive}: {type(error).__name__}: {error}. The archive is truncated "
                f"or damaged (nothing was extracted into {target.parent}); delete it and fetch it again"
            ) from error
        top = [p for p in tmp.iterdir() if not p.name.startswith("._")]
        source = top[0] if len(top) == 1 and top[0].is_dir() else tmp
        try:
            os.rename(source, target)
        except OSError:
            if not target.is_dir():  # another process winning the race is fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# --------------------------------------------------------------------------- locating data


@dataclass
class Located:
    """Where a variant was found (or, when nothing is found, everywhere we looked)."""

    folder: Path | None = None
    archive: Path | None = None
    looked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _user_folders(spec: DatasetSpec, path: Path | None) -> list[Path]:
    folders = []
    if path is not None:
        folders.append(Path(path).expanduser())
    if spec.env_var and os.environ.get(spec.env_var):
        folders.append(Path(os.environ[spec.env_var]).expanduser())
    return folders


def locate(spec: DatasetSpec, variant: Variant, root: Path, path: Path | None = None) -> Located:
    """Find an extracted folder (trusted when its layout is right) or an archive; no hashing."""
    found = Located()
    if variant.bundled:
        folders = [sample_dir() / variant.folder]
    elif spec.folder is not None:  # your own images: that folder and no other
        folders = [spec.folder]
    else:
        folders = _user_folders(spec, path) + [root / variant.folder] + [m / variant.folder for m in mirror_dirs()]
    for folder in folders:
        found.looked.append(f"folder {folder}")
        if folder.is_dir():
            problem = _layout_problem(spec, variant, folder)
            if problem is None:
                found.folder = folder
                return found
            found.problems.append(problem)
    if variant.archive is not None:
        for place in [root] + mirror_dirs():
            candidate = place / variant.archive.filename
            found.looked.append(f"archive {candidate}")
            if candidate.is_file():
                found.archive = candidate
                return found
    return found


def _not_found(spec: DatasetSpec, tried: list[tuple[Variant, Located]]) -> DatasetNotFoundError:
    lines = [f"dataset {spec.name!r} ({spec.description}) was not found. Looked at:"]
    for variant, located in tried:
        lines += [f"  [{variant.label}] {place}" for place in located.looked]
        lines += [f"  [{variant.label}] unusable: {problem}" for problem in located.problems]
    lines.append("To get it:")
    lines += [f"  [{variant.label}] {_how_to_get(spec, variant)}" for variant, _ in tried]
    sample = next((v for v in spec.variants if v.bundled), None)
    if sample is not None and all(v is not sample for v, _ in tried):
        lines.append(f"  (a few images a class ship with the project, enough to try the code but not for "
                     f"results: variant {SAMPLE_LABEL!r}, {sample.description}; e.g. data_variant: "
                     f"{SAMPLE_LABEL} in a training config, as the smoke profile does)")
    if not mirror_dirs():
        lines.append("  (REPLICATION_MIRRORS is not set)")
    hint = REPO.parent / "shared" / "data"
    for variant, _ in tried:
        if variant.archive and (hint / variant.archive.filename).is_file():
            lines.append(f"  hint: {hint / variant.archive.filename} exists; set REPLICATION_MIRRORS={hint}")
            break
    return DatasetNotFoundError("\n".join(lines))


def _download(spec: DatasetSpec, variant: Variant, root: Path) -> Path:
    """Fetch the variant's public archive into the root (checked before it is renamed)."""
    archive = variant.archive
    if archive is None or archive.url is None:
        raise DatasetNotFoundError(f"{spec.name} [{variant.label}] has no public download; {_how_to_get(spec, variant)}")
    from torchvision.datasets.utils import download_url  # lazily: torchvision takes seconds to import

    final = root / archive.filename
    with atomic_file(final) as tmp:
        download_url(archive.url, str(root), filename=tmp.name)
        verify_archive(tmp, archive)
    return final


def count_problem(spec: DatasetSpec, variant: Variant, folder: Path) -> str | None:
    """Why an extracted folder does not hold the whole release (its image count per split and its
    classes are the registry's), or None. A folder you supply (ImageNet, your own) may hold any subset."""
    if spec.supplied:
        return None
    counts = variant.counts or spec.counts
    for own in (spec.splits["train"], spec.held_out()):
        listing = LAYOUTS[spec.layout](folder, own)
        if len(listing) != counts[own] or len(listing.classes) != spec.num_classes:
            return (f"{folder} holds {len(listing):,} {own} images in {len(listing.classes)} classes, but the "
                    f"{variant.label} release of {spec.name} has {counts[own]:,} in {spec.num_classes} (an "
                    f"interrupted extraction or copy?); delete the folder and run `python -m replication data "
                    f"prepare {spec.name}` to extract it again from its checked archive")
    return None


def _prepare_variant(spec: DatasetSpec, variant: Variant, located: Located, root: Path,
                     progress: bool) -> Path:
    if located.folder is not None:  # found extracted (data root or mirror): trusted only when complete
        problem = count_problem(spec, variant, located.folder)
        if problem is not None:
            raise DataError(problem)
        return located.folder
    assert located.archive is not None
    verify_archive(located.archive, variant.archive, root)
    target = root / variant.folder
    if target.is_dir():
        problem = _layout_problem(spec, variant, target)
        if problem is None:  # extracted by a concurrent call meanwhile
            return target
        raise DataError(f"{problem}; move or delete {target} so that {located.archive} can be extracted there")
    folder = extract_archive(located.archive, target, progress=progress)
    problem = _layout_problem(spec, variant, folder)
    if problem is not None:
        shutil.rmtree(folder, ignore_errors=True)
        raise CorruptArchiveError(
            f"{located.archive} extracted, but {problem}; the archive is not the expected "
            f"{variant.archive.filename}. Delete it and fetch it again"
        )
    return folder
