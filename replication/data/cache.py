"""Decode-once caches (paper Section 2): every split decoded to uint8 once, memory-mapped after.

The first load of a split picks a release (one already cached, extracted or
archived first, then one whose native size is the size asked for), extracts it
(``archives``), decodes every image with PIL and writes
<root>/cache/<variant>/<split>-<size>px.{npy,labels.npy,json} atomically, the .json
last. Images are resized only when a size other than the native one is asked for,
the way Section 2 does it: shorter side to the size, then the central square crop.
``FileDataset`` streams through PIL instead, for data too large to cache (ImageNet).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from replication.data.archives import Located, _download, _ensure_writable, _not_found, _prepare_variant, locate
from replication.data.layouts import LAYOUTS, Listing
from replication.data.registry import DataError, DatasetSpec, Variant, _own_split, _root, get_spec
from replication.paths import partial_name, remove_stale_partials

CACHE_FORMAT = 2  # 2: the record holds each file's size and sha256, checked on every load
RESIZE_RULE = "shorter side to size (PIL bilinear, antialiased), then central size x size crop"


# --------------------------------------------------------------------------- the result type


@dataclass(eq=False)
class ImageSplit:
    """One split decoded to uint8 pixels.

    images: [N, H, W, 3] uint8 (a read-only memory map when it comes from the cache),
    labels: [N] int64 indices into ``classes`` (ids, e.g. WordNet ids) and
    ``class_names`` (words). ``variant`` names the release it was decoded from.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    class_names: list[str]
    name: str
    split: str
    variant: str = ""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def size(self) -> int:
        return int(self.images.shape[1])


def per_class_indices(labels: np.ndarray, per_class: int, seed: int,
                      describe=lambda label: f"class {label}") -> np.ndarray:
    """Sorted indices of ``per_class`` images of every class present in ``labels``, drawn
    without replacement (deterministic in ``seed``); a class with fewer images is an error."""
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise ValueError(f"{describe(int(label))} has {len(members)} images, fewer than per_class={per_class}")
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def subset_per_class(split: ImageSplit, per_class: int, seed: int) -> ImageSplit:
    """``per_class`` images of every class (``per_class_indices``), in the split's order,
    so a subset of a subset is stable."""
    index = per_class_indices(
        split.labels, per_class, seed,
        describe=lambda label: f"class {label} ({split.class_names[label]!r}) of {split.name}/{split.split}")
    return replace(
        split, images=np.ascontiguousarray(split.images[index]), labels=split.labels[index].copy()
    )


# --------------------------------------------------------------------------- the cache files


def cache_dir(root: str | Path | None = None) -> Path:
    """Folder of the decoded caches: <data root>/cache."""
    return _root(root) / "cache"


def _cache_files(root: Path, variant: Variant, split: str, size: int, fingerprint: str | None = None) -> dict[str, Path]:
    # a folder you supply gets a cache of its own contents: two folders never share decoded images
    folder = variant.id if fingerprint is None else f"{variant.id}-{fingerprint[:16]}"
    stem = cache_dir(root) / folder / f"{split}-{size}px"
    return {
        "images": stem.with_name(stem.name + ".npy"),
        "labels": stem.with_name(stem.name + ".labels.npy"),
        "meta": stem.with_name(stem.name + ".json"),
    }


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_meta(files: dict[str, Path]) -> dict | None:
    """The cache's record when the cache is complete: of this format, and each file of the size
    the record says (a cut file is not complete; ``data list`` does not call it cached)."""
    try:
        meta = json.loads(files["meta"].read_text())
    except (OSError, ValueError):
        return None
    if meta.get("format") != CACHE_FORMAT:
        return None
    for key in ("images", "labels"):
        try:
            if files[key].stat().st_size != meta["files"][key]["bytes"]:
                return None
        except (OSError, KeyError, TypeError):
            return None
    return meta


def _cache_complete(root: Path, variant: Variant, split: str, size: int) -> bool:
    return _read_meta(_cache_files(root, variant, split, size)) is not None


# --------------------------------------------------------------------------- decoding


def decode_image(path: Path | str, size: int) -> np.ndarray:
    """PIL decode to RGB uint8 [size, size, 3]; shorter side to ``size`` then centre crop."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        return fit_square(image, size)


def fit_square(image, size: int) -> np.ndarray:
    """Section 2: the shorter side rescaled to ``size`` (PIL bilinear), then the central square, as uint8."""
    width, height = image.size
    if (width, height) != (size, size):
        scale = size / min(width, height)
        new = (max(size, round(width * scale)), max(size, round(height * scale)))
        image = image.resize(new, Image.Resampling.BILINEAR)
        left, top = (new[0] - size) // 2, (new[1] - size) // 2
        image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8)


def _decode_chunk(job: tuple[list[str], int]) -> np.ndarray:
    paths, size = job
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            out[i] = decode_image(path, size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:  # PIL: a bad file
            raise DataError(f"{path} cannot be decoded ({type(error).__name__}: {error}); delete or replace it "
                            "(`python -m replication data verify NAME` lists every unreadable image of a "
                            "dataset)") from None
    return out


def _pixel_chunk(job: tuple[np.ndarray, int]) -> np.ndarray:
    pixels, size = job
    if pixels.shape[1] == size and pixels.shape[2] == size:
        return pixels
    return np.stack([fit_square(Image.fromarray(p), size) for p in pixels])


def _decode_into(out: np.ndarray, listing: Listing, size: int, workers: int, progress: bool,
                 desc: str) -> None:
    """Fill ``out`` [N, size, size, 3] from the listing, in chunks, in a process pool when large."""
    n = len(listing)
    chunk = 512
    if listing.pixels is not None:
        jobs = [(listing.pixels[i:i + chunk], size) for i in range(0, n, chunk)]
        work = _pixel_chunk
    else:
        names = [str(p) for p in listing.files]
        jobs = [(names[i:i + chunk], size) for i in range(0, n, chunk)]
        work = _decode_chunk
    bar = tqdm(total=n, desc=desc, unit="img", disable=not progress, smoothing=0.1)
    try:
        if workers > 1 and len(jobs) > 4 and listing.pixels is None:
            method = "fork" if "fork" in mp.get_all_start_methods() else None
            with mp.get_context(method).Pool(workers) as pool:
                for i, block in enumerate(pool.imap(work, jobs)):
                    out[i * chunk:i * chunk + len(block)] = block
                    bar.update(len(block))
        else:
            for i, job in enumerate(jobs):
                block = work(job)
                out[i * chunk:i * chunk + len(block)] = block
                bar.update(len(block))
    finally:
        bar.close()


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _check_space(folder: Path, nbytes: int) -> None:
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise DataError(
            f"the cache needs {nbytes / 2**30:.1f} GiB but {folder} has {free / 2**30:.1f} GiB free; "
            "pick a smaller --size or point REPLICATION_DATA at a bigger disk"
        )


def _reserve(path: Path, folder: Path) -> None:
    """Allocate the memory-mapped file's blocks now: a disk that fills while decoding would
    otherwise kill the process with SIGBUS, with no word of where or why."""
    try:
        with open(path, "r+b") as handle:
            os.posix_fallocate(handle.fileno(), 0, path.stat().st_size)
    except AttributeError:  # no posix_fallocate on this platform: the free-space check above must do
        return
    except OSError as error:
        raise DataError(f"cannot reserve {path.stat().st_size / 2**30:.2f} GiB for the decoded cache in {folder} "
                        f"({error.strerror}); free some space or point REPLICATION_DATA at a bigger disk") from None


def _build_cache(spec: DatasetSpec, variant: Variant, folder: Path, own: str, size: int,
                 files: dict[str, Path], progress: bool, workers: int) -> None:
    listing = LAYOUTS[spec.layout](folder, own)
    if len(listing) == 0:
        raise DataError(f"{folder} has no images for split {own!r} of {spec.name}")
    target_dir = files["images"].parent
    _ensure_writable(target_dir)
    for final in files.values():
        remove_stale_partials(target_dir, final.name)
    n = len(listing)
    _check_space(target_dir, n * size * size * 3)
    tmp = {key: partial_name(final) for key, final in files.items()}
    try:
        images = np.lib.format.open_memmap(tmp["images"], mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
        _reserve(tmp["images"], target_dir)
        started = time.perf_counter()
        _decode_into(images, listing, size, workers, progress, f"decode {variant.id} {own} {size}px")
        images.flush()
        del images
        with open(tmp["labels"], "wb") as handle:
            np.save(handle, listing.labels.astype(np.int64))
        written = {key: {"bytes": tmp[key].stat().st_size, "sha256": _file_sha256(tmp[key])}
                   for key in ("images", "labels")}
        meta = {"files": written,
            "format": CACHE_FORMAT, "dataset": spec.name, "variant": variant.id, "split": own,
            "size": size, "count": n, "classes": listing.classes, "class_names": listing.class_names,
            "source": str(folder), "resize": None if size == variant.native_size else RESIZE_RULE,
            "decoder": "PIL Image.open(...).convert('RGB')",
            "decode_seconds": round(time.perf_counter() - started, 2),
        }
        tmp["meta"].write_text(json.dumps(meta, indent=1))
        os.replace(tmp["images"], files["images"])
        os.replace(tmp["labels"], files["labels"])
        os.replace(tmp["meta"], files["meta"])  # last: its presence marks a complete cache
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)


def _load_cache(spec: DatasetSpec, variant: Variant, own: str, files: dict[str, Path]) -> ImageSplit | None:
    meta = _read_meta(files)
    if meta is None:
        if files["meta"].is_file():
            print(f"note: the decoded cache {files['images']} is incomplete or of an older format; "
                  "decoding it again", file=sys.stderr)
        return None
    changed = [key for key in ("images", "labels") if _file_sha256(files[key]) != meta["files"][key]["sha256"]]
    if changed:  # bytes flipped since it was written: rebuild it from the verified source
        print(f"note: the decoded cache {files[changed[0]]} no longer matches its sha256; decoding it again",
              file=sys.stderr)
        return None
    images = np.load(files["images"], mmap_mode="r")
    labels = np.load(files["labels"])
    if images.shape[0] != meta["count"] or labels.shape[0] != meta["count"]:
        return None
    return ImageSplit(images, labels, list(meta["classes"]), list(meta["class_names"]),
                      spec.name, own, variant.id)


# --------------------------------------------------------------------------- choosing a release

# Choosing a release lives here, next to the cache files, because one already decoded for the
# split (or any split, for prepare) is preferred over extracting another.


def _variant_order(spec: DatasetSpec, root: Path, size: int | None, variant: str | None,
                   path: Path | None, split: str | None = None) -> list[tuple[Variant, Located, bool]]:
    """Variants to try, best first: ready ones (cached for ``split``, extracted or archived),
    then those whose native size is ``size``, then registry order (official releases first)."""
    # the committed sample only when asked for: never a silent stand-in for a missing release
    candidates = [spec.variant(variant)] if variant else [v for v in spec.variants if not v.bundled]
    splits = [split] if split else sorted(set(spec.splits.values()))
    ranked = []
    for order, v in enumerate(candidates):
        located = locate(spec, v, root, path)
        cached = any(_cache_complete(root, v, s, size or v.size) for s in splits)
        ready = cached or located.folder is not None or located.archive is not None
        matches = size is None or v.native_size == size
        ranked.append(((not ready, not matches, order), v, located, ready))
    ranked.sort(key=lambda item: item[0])
    return [(v, located, ready) for _, v, located, ready in ranked]


def prepare(name: str, root: str | Path | None = None, variant: str | None = None,
            size: int | None = None, download: bool = False, progress: bool = True,
            path: str | Path | None = None) -> Path:
    """Find the dataset (data root, then mirrors), check its archive and extract it into the root.

    Returns the extracted dataset folder. ``variant`` picks a release (see
    ``data list``); ``size`` prefers the release whose native size it is;
    ``download`` fetches a public archive when nothing is found; ``path`` is a
    folder you supply (ImageNet). Raises DatasetNotFoundError, ChecksumError,
    CorruptArchiveError.
    """
    spec = get_spec(name)
    root = _root(root)
    return _prepare_choice(spec, root, variant, size, download, progress, path)[1]


def _prepare_choice(spec, root, variant, size, download, progress, path) -> tuple[Variant, Path]:
    order = _variant_order(spec, root, size, variant, Path(path) if path else None)
    for v, located, _ in order:
        if located.folder is not None or located.archive is not None:
            return v, _prepare_variant(spec, v, located, root, progress)
    if download:
        for v, located, _ in order:
            if v.archive is not None and v.archive.url:
                located.archive = _download(spec, v, root)
                return v, _prepare_variant(spec, v, located, root, progress)
    raise _not_found(spec, [(v, located) for v, located, _ in order])


def list_split(name: str, split: str, root: str | Path | None = None, variant: str | None = None,
               size: int | None = None, path: str | Path | None = None) -> Listing:
    """The layout parser's view of one split: files (or pixels), labels and classes, in cache order."""
    spec = get_spec(name)
    own = _own_split(spec, split)
    _, folder = _prepare_choice(spec, _root(root), variant, size, False, False, path)
    return LAYOUTS[spec.layout](folder, own)


def load_split(name: str, split: str, root: str | Path | None = None, size: int | None = None,
               progress: bool = True, variant: str | None = None, workers: int | None = None,
               path: str | Path | None = None) -> ImageSplit:
    """One split as uint8 [N, size, size, 3], decoded once and memory-mapped afterwards.

    ``split``: "train", or "test"/"val" for the held-out split. ``size``: square
    side (default: the release's native size; Section 2's rescale + centre crop
    otherwise). The first call extracts the archive (see ``prepare``) and writes
    <root>/cache/<variant>/<split>-<size>px.{npy,labels.npy,json} atomically.
    """
    spec = get_spec(name)
    own = _own_split(spec, split)
    root = _root(root)
    order = _variant_order(spec, root, size, variant, Path(path) if path else None, own)
    chosen = next(((v, loc) for v, loc, ready in order if ready), None)
    if chosen is None:
        raise _not_found(spec, [(v, loc) for v, loc, _ in order])
    v, located = chosen
    want = size or v.size
    fingerprint = None
    if spec.supplied:  # a folder you supply: its contents decide which cache is its own
        folder = _prepare_variant(spec, v, located, root, progress)
        fingerprint = folder_fingerprint(spec, folder)
    files = _cache_files(root, v, own, want, fingerprint)
    cached = _load_cache(spec, v, own, files)
    if cached is not None:
        return cached
    folder = _prepare_variant(spec, v, located, root, progress)
    _build_cache(spec, v, folder, own, want, files, progress, workers or _default_workers())
    loaded = _load_cache(spec, v, own, files)
    assert loaded is not None
    return loaded


def folder_fingerprint(spec: DatasetSpec, folder: Path) -> str:
    """A digest of what a folder holds for both splits: its classes, and each image's path and size
    (and, for your own images, ``folder:PATH``, its modification time too).

    It names a folder you supply in a run's identity and in its decoded cache, so that pointing
    at another folder, or changing a file, never reuses the first one's runs, caches or
    checkpoints. (ImageNet's keeps its first form, without times: copying the 140 GB tree to
    another disk should not retrain its runs.)
    """
    digest = hashlib.sha256()
    with_time = spec.folder is not None
    for own in (spec.splits["train"], spec.held_out()):
        try:
            listing = LAYOUTS[spec.layout](folder, own)
        except DataError:
            if with_time:  # your own folder must hold both splits
                raise
            continue  # an ImageNet folder with val/ only
        digest.update(json.dumps([own, listing.classes, listing.labels.tolist()]).encode())
        for path in listing.files or []:
            stat = Path(path).stat()
            stamp = f"{stat.st_size}\t{stat.st_mtime_ns}" if with_time else f"{stat.st_size}"
            digest.update(f"{Path(path).relative_to(folder)}\t{stamp}\n".encode())
    return digest.hexdigest()[:32]


def identify(name: str, variant: str | None = None, root: str | Path | None = None,
             path: str | Path | None = None) -> tuple[str, str | None]:
    """(release label, folder fingerprint or None): what a run's identity records of its data.

    A release named by ``variant`` needs no data to be found (a report re-executed from the
    run store reads no images); ``variant=None`` resolves to the release this machine has. A
    folder you supply (ImageNet, ``folder:PATH``) is always looked at, and gets a fingerprint of its contents.
    """
    spec = get_spec(name)
    if variant is not None and not spec.supplied:
        return spec.variant(variant).label, None
    order = _variant_order(spec, _root(root), None, variant, Path(path) if path else None)
    chosen = next(((v, loc) for v, loc, ready in order if ready), None)
    if chosen is None:
        raise _not_found(spec, [(v, loc) for v, loc, _ in order])
    if not spec.supplied:
        return chosen[0].label, None
    folder = _prepare_variant(spec, chosen[0], chosen[1], _root(root), False)
    return chosen[0].label, folder_fingerprint(spec, folder)


class FileDataset:
    """A map-style dataset for torch's DataLoader: (PIL RGB image -> transform, label).

    For data too large to cache as arrays (ImageNet at 256 px), stream it with
    DataLoader workers instead: ``DataLoader(image_dataset("imagenet", "train", tf), ...)``.
    """

    def __init__(self, listing: Listing, transform=None):
        self.listing = listing
        self.transform = transform
        self.classes = listing.classes
        self.class_names = listing.class_names

    def __len__(self) -> int:
        return len(self.listing)

    def __getitem__(self, index: int):
        if self.listing.pixels is not None:
            image = Image.fromarray(self.listing.pixels[index])
        else:
            with Image.open(self.listing.files[index]) as raw:
                image = raw.convert("RGB")
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.listing.labels[index])


def image_dataset(name: str, split: str, transform=None, root: str | Path | None = None,
                  variant: str | None = None, path: str | Path | None = None) -> FileDataset:
    """Stream one split through PIL (labels and class order identical to ``load_split``)."""
    return FileDataset(list_split(name, split, root=root, variant=variant, path=path), transform)
