"""The data layer (Section 2): registry, archives -> data root, decode-once caches, errors.

The real-mirror tests use the default data root (REPLICATION_DATA or <repo>/data), so
the first run extracts and decodes and later runs memory-map the cached arrays.
Everything else builds tiny official-layout datasets in a tmp dir.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from replication import data
from replication.cli import data as data_cli
from replication.data import archives, layouts
from replication.data import (
    ChecksumError,
    CorruptArchiveError,
    DataError,
    DatasetNotFoundError,
    ImageSplit,
    UnknownDatasetError,
    load_split,
    prepare,
    subset_per_class,
)

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
IMAGENETTE_NAMES = ["tench", "English springer", "cassette player", "chain saw", "church",
                    "French horn", "garbage truck", "gas pump", "golf ball", "parachute"]

# name, variant, archive, {split: count}, classes, per class {split: n} (None: uneven)
REAL = [
    ("cifar10-jpeg", None, "cifar10-jpeg.tgz", {"train": 50000, "test": 10000}, 10,
     {"train": 5000, "test": 1000}),
    ("tiny-imagenet-200", "32px", "tiny-imagenet-200-32px.tgz", {"train": 100000, "val": 10000}, 200,
     {"train": 500, "val": 50}),
    ("imagenette2-128", None, "imagenette2-128px.tgz", {"train": 9469, "val": 3925}, 10, None),
]


# --------------------------------------------------------------------------- real mirrors


@pytest.mark.slow
@pytest.mark.parametrize("name,variant,archive,counts,num_classes,per_class", REAL,
                         ids=[row[0] for row in REAL])
def test_real_mirror_counts_names_and_pixels(mirror, name, variant, archive, counts, num_classes, per_class):
    mirror(archive)
    for split, count in counts.items():
        loaded = load_split(name, split, variant=variant, progress=False)
        assert (len(loaded), loaded.split, loaded.num_classes) == (count, split, num_classes)
        assert loaded.images.shape == (count, loaded.size, loaded.size, 3)
        assert loaded.images.dtype == np.uint8 and loaded.labels.dtype == np.int64
        per = np.bincount(loaded.labels, minlength=num_classes)
        assert per.sum() == count and per.min() > 0
        if per_class:
            assert (per == per_class[split]).all()
        # words, not ids
        assert not any(n.startswith("n0") for n in loaded.class_names)
        # later loads memory-map the cache
        again = load_split(name, split, variant=variant, progress=False)
        assert isinstance(again.images, np.memmap)
        # the cache equals a direct PIL decode of the same files
        listing = data.list_split(name, split, variant=variant)
        assert np.array_equal(listing.labels, loaded.labels)
        rng = np.random.default_rng(0)
        for i in rng.choice(count, size=20, replace=False):
            with Image.open(listing.files[i]) as image:
                expected = np.asarray(image.convert("RGB"))
            assert np.array_equal(loaded.images[i], expected), listing.files[i]
    if name == "cifar10-jpeg":
        assert loaded.class_names == CIFAR_CLASSES
    elif name == "imagenette2-128":
        assert loaded.class_names == IMAGENETTE_NAMES
    else:
        assert "goldfish" in loaded.class_names and len(set(loaded.classes)) == 200


# --------------------------------------------------------------------------- tiny fixtures


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _jpeg_bytes(rng: np.random.Generator, size: int, mode: str = "RGB") -> bytes:
    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _register(monkeypatch, name: str, label: str, archive: Path) -> None:
    """Point one registry variant's checksum at a test archive."""
    spec = data.DATASETS[name]
    old = spec.variant(label)
    new = replace(old, archive=replace(old.archive, sha256=_sha256(archive), md5=None, nbytes=None))
    variants = tuple(new if v is old else v for v in spec.variants)
    monkeypatch.setitem(data.DATASETS, name, replace(spec, variants=variants))


@pytest.fixture
def no_mirrors(monkeypatch, tmp_path):
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    monkeypatch.setenv("REPLICATION_MIRRORS", str(empty))
    monkeypatch.delenv("REPLICATION_IMAGENET", raising=False)
    return empty


@pytest.fixture(autouse=True)
def generated_releases_are_complete(monkeypatch, tmp_path):
    """The small releases generated below stand in for whole ones: their counts are not the
    registry's, so the completeness check passes them (it is tested on its own below)."""
    real = archives.count_problem
    monkeypatch.setattr(archives, "count_problem", lambda spec, variant, folder: None
                        if Path(folder).is_relative_to(tmp_path) else real(spec, variant, folder))


@pytest.fixture(autouse=True)
def generated_cifar_md5s(monkeypatch):
    """The batches made below are not the official files: let their md5s stand in for the
    published ones (restored after each test), as if they were the official release."""
    monkeypatch.setattr(layouts, "CIFAR_BATCH_MD5", dict(layouts.CIFAR_BATCH_MD5))


def make_cifar_batches(folder: Path, per_batch: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """An official-layout cifar-10-batches-py with ``per_batch`` random images a batch; their md5s
    are registered as the official ones for the test (``generated_cifar_md5s``)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    rows = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows[name] = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        batch = {b"batch_label": name.encode(), b"data": rows[name],
                 b"labels": [int(x) for x in rng.integers(0, 10, per_batch)],
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [c.encode() for c in CIFAR_CLASSES], b"num_cases_per_batch": per_batch}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    for path in folder.iterdir():
        layouts.CIFAR_BATCH_MD5[path.name] = hashlib.md5(path.read_bytes()).hexdigest()
    return rows


class _WritesMarker:
    """A pickle payload that, if ever unpickled, creates the file ``marker``: harmless proof of execution."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_cifar_batch_is_never_unpickled(tmp_path, no_mirrors):
    folder = tmp_path / "cifar-10-batches-py"
    make_cifar_batches(folder)
    marker = tmp_path / "payload-ran"
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": _WritesMarker(marker)}))  # md5 no longer matches
    with pytest.raises(data.ChecksumError, match="data_batch_1: md5 .* is not the official"):
        load_split("cifar10", "train", root=tmp_path, progress=False)
    assert not marker.exists()


def test_a_crafted_imagenet_meta_bin_is_never_run(tmp_path):
    import torch

    marker = tmp_path / "payload-ran"
    torch.save((_WritesMarker(marker), []), tmp_path / "meta.bin")
    with pytest.raises(data.DataError, match="meta.bin is not torchvision's ImageNet meta.bin"):
        layouts._read_synset_words(tmp_path, ["n01440764"])
    assert not marker.exists()
    torch.save(({"n01440764": ("tench", "Tinca tinca")}, ["n01440764"]), tmp_path / "meta.bin")
    assert layouts._read_synset_words(tmp_path, ["n01440764"]) == {"n01440764": "tench"}


WNIDS = ["n01443537", "n01629819", "n01641577"]
WORDS = {"n01443537": "goldfish, Carassius auratus", "n01629819": "European fire salamander, Salamandra salamandra",
         "n01641577": "bullfrog, Rana catesbeiana", "n09999999": "unused, other"}


def make_tiny_zip(path: Path, train_per_class: int = 3, val_per_class: int = 2) -> Path:
    """A Tiny ImageNet zip in the official 64 px layout (one greyscale image included)."""
    rng = np.random.default_rng(1)
    top = "tiny-imagenet-200"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{top}/wnids.txt", "\n".join(reversed(WNIDS)) + "\n")  # not sorted, like the original
        zf.writestr(f"{top}/words.txt", "".join(f"{w}\t{t}\n" for w, t in WORDS.items()))
        for wnid in WNIDS:
            for k in range(train_per_class):
                mode = "L" if (wnid, k) == (WNIDS[0], 1) else "RGB"
                zf.writestr(f"{top}/train/{wnid}/images/{wnid}_{k}.JPEG", _jpeg_bytes(rng, 64, mode))
            zf.writestr(f"{top}/train/{wnid}/{wnid}_boxes.txt", "")
        lines = []
        for k in range(len(WNIDS) * val_per_class):
            zf.writestr(f"{top}/val/images/val_{k}.JPEG", _jpeg_bytes(rng, 64))
            lines.append(f"val_{k}.JPEG\t{WNIDS[k % len(WNIDS)]}\t0\t0\t63\t63")
        zf.writestr(f"{top}/val/val_annotations.txt", "\n".join(reversed(lines)) + "\n")
        zf.writestr(f"{top}/test/images/test_0.JPEG", _jpeg_bytes(rng, 64))
    return path


def make_jpeg_tree_tgz(path: Path, top: str = "cifar10-jpeg", per_class: int = 2) -> Path:
    """A cifar10-jpeg style archive: <top>/{train,test}/<class>/<NNNN>.jpg, 32 px."""
    rng = np.random.default_rng(2)
    with tarfile.open(path, "w:gz") as tf:
        for split in ("train", "test"):
            for cls in CIFAR_CLASSES:
                for k in range(per_class):
                    payload = _jpeg_bytes(rng, 32)
                    info = tarfile.TarInfo(f"{top}/{split}/{cls}/{k:04d}.jpg")
                    info.size = len(payload)
                    tf.addfile(info, io.BytesIO(payload))
    return path


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob(".partial-*"))


# --------------------------------------------------------------------------- official layouts


def test_official_cifar_batches_folder(tmp_path, no_mirrors):
    rows = make_cifar_batches(tmp_path / "cifar-10-batches-py")
    train = load_split("cifar10", "train", root=tmp_path, progress=False)
    test = load_split("cifar10", "val", root=tmp_path, progress=False)  # val == test
    assert (len(train), len(test), test.split, train.variant) == (20, 4, "test", "cifar10-official")
    assert train.classes == train.class_names == CIFAR_CLASSES
    first = rows["data_batch_1"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    assert np.array_equal(train.images[0], first)
    assert np.array_equal(test.images[3], rows["test_batch"][3].reshape(3, 32, 32).transpose(1, 2, 0))
    assert (tmp_path / "cache" / "cifar10-official" / "train-32px.npy").is_file()
    assert isinstance(load_split("cifar10", "train", root=tmp_path).images, np.memmap)
    small = load_split("cifar10", "test", root=tmp_path, size=16, progress=False)
    assert small.images.shape == (4, 16, 16, 3)


def test_official_tiny_imagenet_zip(tmp_path, no_mirrors, monkeypatch):
    archive = make_tiny_zip(tmp_path / "tiny-imagenet-200.zip")
    _register(monkeypatch, "tiny-imagenet-200", "64px", archive)
    train = load_split("tiny-imagenet-200", "train", root=tmp_path, progress=False)
    val = load_split("tiny-imagenet-200", "test", root=tmp_path, progress=False)
    assert (train.variant, train.size, len(train), len(val), val.split) == ("tiny-imagenet-200-64px", 64, 9, 6, "val")
    assert train.classes == sorted(WNIDS)
    assert train.class_names == ["goldfish", "European fire salamander", "bullfrog"]
    assert list(val.labels) == [0, 1, 2, 0, 1, 2]  # val_0..val_5, labels from val_annotations.txt
    folder = tmp_path / "tiny-imagenet-200"
    for i, path in enumerate(data.list_split("tiny-imagenet-200", "val", root=tmp_path).files):
        assert path == folder / "val" / "images" / f"val_{i}.JPEG"
        assert np.array_equal(val.images[i], data.decode_image(path, 64))
    grey = folder / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_1.JPEG"
    with Image.open(grey) as image:
        assert image.mode == "L"
        assert np.array_equal(train.images[1], np.asarray(image.convert("RGB")))
    assert _leftovers(tmp_path) == []
    # later calls neither re-hash nor re-extract
    monkeypatch.setattr(archives, "_file_digest", lambda *a: pytest.fail("re-hashed"))
    monkeypatch.setattr(archives, "extract_archive", lambda *a, **k: pytest.fail("re-extracted"))
    assert len(load_split("tiny-imagenet-200", "train", root=tmp_path, size=32, progress=False)) == 9


def test_size_prefers_the_release_with_that_native_size(tmp_path, monkeypatch, mirror):
    mirror("tiny-imagenet-200-32px.tgz")
    archive = make_tiny_zip(tmp_path / "tiny-imagenet-200.zip")
    _register(monkeypatch, "tiny-imagenet-200", "64px", archive)
    spec = data.get_spec("tiny-imagenet-200")
    pick = lambda size: data._variant_order(spec, tmp_path, size, None, None, "val")[0][0].label
    assert (pick(None), pick(64), pick(32)) == ("64px", "64px", "32px")
    with pytest.raises(UnknownDatasetError, match="32px"):
        spec.variant("16px")


def test_checksum_is_verified_once_and_again_when_the_file_changes(tmp_path, monkeypatch):
    archive = make_jpeg_tree_tgz(tmp_path / "cifar10-jpeg.tgz")
    spec_archive = data.Archive("cifar10-jpeg.tgz", sha256=_sha256(archive))
    calls = []
    real = archives._file_digest
    monkeypatch.setattr(archives, "_file_digest", lambda *a: calls.append(a) or real(*a))
    for _ in range(3):
        data.verify_archive(archive, spec_archive, root=tmp_path)
    assert len(calls) == 1
    stat = archive.stat()
    import os

    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    data.verify_archive(archive, spec_archive, root=tmp_path)
    assert len(calls) == 2


def test_imagenet_from_a_user_folder_resized_as_in_section_2(tmp_path, no_mirrors, monkeypatch):
    folder = tmp_path / "my-imagenet"
    rng = np.random.default_rng(3)
    for k, wnid in enumerate(["n01440764", "n01443537"]):
        (folder / "val" / wnid).mkdir(parents=True)
        for i, shape in enumerate([(30, 40), (50, 20)]):  # (height, width): landscape and portrait
            pixels = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "val" / wnid / f"ILSVRC2012_val_{k}{i}.JPEG", quality=95)
    (folder / "LOC_synset_mapping.txt").write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
    monkeypatch.setenv("REPLICATION_IMAGENET", str(folder))
    assert prepare("imagenet", root=tmp_path) == folder  # used in place, never copied
    val = load_split("imagenet", "test", root=tmp_path, size=16, progress=False)
    assert val.images.shape == (4, 16, 16, 3) and val.class_names == ["tench", "goldfish"]
    assert list(val.labels) == [0, 0, 1, 1]
    path = folder / "val" / "n01440764" / "ILSVRC2012_val_01.JPEG"  # 20 wide, 50 high
    with Image.open(path) as image:
        resized = image.convert("RGB").resize((16, 40), Image.Resampling.BILINEAR)
    assert np.array_equal(val.images[1], np.asarray(resized)[12:28])  # central crop
    streamed = data.image_dataset("imagenet", "val", root=tmp_path)
    image, label = streamed[3]
    assert (len(streamed), label, image.mode) == (4, 1, "RGB")
    with pytest.raises(DataError, match="no class folders"):
        load_split("imagenet", "train", root=tmp_path, size=16)


# --------------------------------------------------------------------------- errors


def test_unknown_dataset_lists_known_names():
    with pytest.raises(UnknownDatasetError) as error:
        load_split("cifar100", "train")
    assert isinstance(error.value, DataError)
    for name in data.DATASETS:
        assert name in str(error.value)
    with pytest.raises(DataError, match="'train' or 'test'"):
        load_split("cifar10", "unlabelled", root="/nonexistent")


def test_missing_dataset_lists_every_place_and_the_fix(tmp_path, no_mirrors):
    with pytest.raises(DatasetNotFoundError) as error:
        load_split("tiny-imagenet-200", "train", root=tmp_path)
    message = str(error.value)
    for place in [tmp_path / "tiny-imagenet-200", tmp_path / "tiny-imagenet-200.zip",
                  tmp_path / "tiny-imagenet-200-32px.tgz", no_mirrors / "tiny-imagenet-200-32px.tgz",
                  no_mirrors / "tiny-imagenet-200-32px"]:
        assert str(place) in message
    assert "http://cs231n.stanford.edu/tiny-imagenet-200.zip" in message
    assert "python -m replication data prepare tiny-imagenet-200 --download" in message
    assert "REPLICATION_MIRRORS" in message
    with pytest.raises(DatasetNotFoundError, match="REPLICATION_IMAGENET"):
        prepare("imagenet", root=tmp_path)
    assert list(tmp_path.iterdir()) == [no_mirrors]  # nothing was created


def test_wrong_size_and_wrong_sha256_name_the_file(tmp_path, no_mirrors, monkeypatch):
    bad = tmp_path / "cifar10-jpeg.tgz"
    bad.write_bytes(b"not the archive")
    with pytest.raises(ChecksumError, match="bytes, expected") as error:
        prepare("cifar10-jpeg", root=tmp_path)
    assert str(bad) in str(error.value)
    spec = data.DATASETS["cifar10-jpeg"]
    variant = replace(spec.variants[0], archive=replace(spec.variants[0].archive, nbytes=None))
    monkeypatch.setitem(data.DATASETS, "cifar10-jpeg", replace(spec, variants=(variant,)))
    with pytest.raises(ChecksumError, match="sha256 is") as error:
        load_split("cifar10-jpeg", "train", root=tmp_path)
    assert str(bad) in str(error.value) and "delete it" in str(error.value)
    assert not (tmp_path / "cifar10-jpeg").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["tgz", "zip"])
def test_truncated_archive_leaves_nothing_behind(tmp_path, no_mirrors, monkeypatch, kind):
    if kind == "tgz":
        name, label, folder = "cifar10-jpeg", "mirror", "cifar10-jpeg"
        archive = make_jpeg_tree_tgz(tmp_path / "cifar10-jpeg.tgz")
    else:
        name, label, folder = "tiny-imagenet-200", "64px", "tiny-imagenet-200"
        archive = make_tiny_zip(tmp_path / "tiny-imagenet-200.zip")
    whole = archive.read_bytes()
    archive.write_bytes(whole[: len(whole) * 2 // 3])
    _register(monkeypatch, name, label, archive)  # the checksum matches: only the format is broken
    with pytest.raises(CorruptArchiveError) as error:
        load_split(name, "train", root=tmp_path, progress=False)
    assert str(archive) in str(error.value) and "truncated" in str(error.value)
    assert not (tmp_path / folder).exists() and _leftovers(tmp_path) == []
    assert not (tmp_path / "cache").exists()
    # the intact archive then extracts cleanly into the same root
    archive.write_bytes(whole)
    _register(monkeypatch, name, label, archive)
    assert len(load_split(name, "train", root=tmp_path, progress=False)) > 0


def test_stale_partial_extraction_is_ignored_and_removed(tmp_path, no_mirrors, monkeypatch):
    archive = make_jpeg_tree_tgz(tmp_path / "cifar10-jpeg.tgz")
    _register(monkeypatch, "cifar10-jpeg", "mirror", archive)
    stale = tmp_path / ".partial-cifar10-jpeg-999999999-0123abcd"  # a killed extraction
    (stale / "train" / "cat").mkdir(parents=True)
    folder = prepare("cifar10-jpeg", root=tmp_path, progress=False)
    assert folder == tmp_path / "cifar10-jpeg" and not stale.exists()
    split = load_split("cifar10-jpeg", "test", root=tmp_path, progress=False)
    assert len(split) == 20 and split.class_names == CIFAR_CLASSES


def test_incomplete_cache_is_rebuilt(tmp_path, no_mirrors):
    make_cifar_batches(tmp_path / "cifar-10-batches-py")
    first = load_split("cifar10", "train", root=tmp_path, progress=False)
    meta = tmp_path / "cache" / "cifar10-official" / "train-32px.json"
    meta.unlink()  # as if the writer died before its last rename
    again = load_split("cifar10", "train", root=tmp_path, progress=False)
    assert meta.is_file() and np.array_equal(first.images, again.images)


# --------------------------------------------------------------------------- subsets


def _toy_split(per_class=(5, 7, 6)) -> ImageSplit:
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(per_class)]).astype(np.int64)
    images = np.arange(len(labels), dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    return ImageSplit(images, labels, ["a", "b", "c"], ["A", "B", "C"], "toy", "train")


def test_subset_per_class_is_deterministic_and_balanced():
    split = _toy_split()
    a, b, c = (subset_per_class(split, 4, seed) for seed in (0, 0, 1))
    assert np.array_equal(a.images, b.images) and not np.array_equal(a.images, c.images)
    assert np.bincount(a.labels).tolist() == [4, 4, 4]
    assert np.array_equal(split.labels[a.images[:, 0, 0, 0]], a.labels)  # images follow labels
    with pytest.raises(ValueError, match="fewer than per_class=6"):
        subset_per_class(split, 6, 0)


# --------------------------------------------------------------------------- CLI


def test_cli_list_prepare_verify(tmp_path, no_mirrors, capsys):
    from replication.__main__ import main as replication_main

    def main(argv):  # the data command alone, without importing the other commands
        parser = argparse.ArgumentParser()
        data_cli.cli_add_arguments(parser)
        return data_cli.cli_main(parser.parse_args(argv[1:]))

    make_cifar_batches(tmp_path / "cifar-10-batches-py")
    assert replication_main(["data", "--root", str(tmp_path), "list"]) == 0
    out = capsys.readouterr().out
    for name in data.DATASETS:
        assert name in out
    assert f"extracted at {tmp_path / 'cifar-10-batches-py'}" in out
    assert "missing - copy cifar10-jpeg.tgz" in out
    assert "missing - run `python -m replication data prepare cifar10 --download`" not in out

    assert main(["data", "--root", str(tmp_path), "prepare", "cifar10", "-q"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "cache" / "cifar10-official" / "test-32px.npy") in out
    assert main(["data", "--root", str(tmp_path), "list"]) == 0
    assert "cached 32px (test+train)" in capsys.readouterr().out

    assert main(["data", "--root", str(tmp_path), "verify", "cifar10"]) == 1  # 20 images, not 50,000
    assert "MISMATCH (expected 50,000)" in capsys.readouterr().out
    assert main(["data", "--root", str(tmp_path), "prepare", "cifar10-jpeg"]) == 1
    assert "was not found" in capsys.readouterr().err


def test_a_folder_of_the_wrong_release_is_not_trusted(tmp_path, no_mirrors, monkeypatch):
    archive = make_tiny_zip(tmp_path / "tiny-imagenet-200.zip")
    _register(monkeypatch, "tiny-imagenet-200", "64px", archive)
    wrong = tmp_path / "tiny-imagenet-200"  # e.g. the 32 px mirror unpacked by hand
    (wrong / "val" / "images").mkdir(parents=True)
    (wrong / "train").mkdir()
    (wrong / "wnids.txt").write_text("\n".join(WNIDS))
    (wrong / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01443537\t0\t0\t1\t1\n")
    Image.new("RGB", (32, 32)).save(wrong / "val" / "images" / "val_0.JPEG")
    with pytest.raises(DataError, match="32x32 images .* not the 64 px"):
        load_split("tiny-imagenet-200", "val", root=tmp_path, progress=False)


def _image_folder(root: Path, split: str, classes: list[str], per_class: int = 2, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / split / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / split / name / f"{i}.png")


@pytest.mark.parametrize("stream", [False, True])
def test_validation_labels_follow_the_training_classes_by_name(tmp_path, no_mirrors, monkeypatch, stream):
    """A validation folder without the first class must not shift every label onto the wrong class."""
    from replication.data.splits import load_data
    from replication.engine.config import TrainConfig

    _image_folder(tmp_path / "folder", "train", ["n00000001", "n00000002", "n00000003"])
    _image_folder(tmp_path / "folder", "val", ["n00000002", "n00000003"])
    monkeypatch.setenv("REPLICATION_IMAGENET", str(tmp_path / "folder"))
    monkeypatch.setenv("REPLICATION_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("REPLICATION_WORKERS", "0")
    config = TrainConfig(model={"arch": "alexnet"}, dataset="imagenet", image_size=16, stream=stream)
    train, val = load_data(config)
    assert val.classes == train.classes == ["n00000001", "n00000002", "n00000003"]
    assert sorted(set(val.labels.tolist())) == [1, 2]
    if stream:
        assert [int(val.dataset[i][1]) for i in range(len(val))] == val.labels.tolist()

    _image_folder(tmp_path / "folder", "val", ["n00000009"], seed=1)  # a class training never saw
    monkeypatch.setenv("REPLICATION_DATA", str(tmp_path / "fresh-root"))  # not the decoded cache of the first
    with pytest.raises(data.DataError, match=r"\['n00000009'\] have images but are not among the 3 training"):
        load_data(config)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_decoded_cache_is_decoded_again(tmp_path, damage, capsys):
    """A cut cache is not 'cached' (data list) and a flipped byte is caught by its sha256: either way
    the next load decodes the images again instead of training on damaged pixels."""
    first = np.array(load_split("cifar10-jpeg", "train", root=tmp_path, variant="sample", progress=False).images)
    cache_file = next((tmp_path / "cache").rglob("train-32px.npy"))
    raw = bytearray(cache_file.read_bytes())
    if damage == "truncate":
        cache_file.write_bytes(bytes(raw[: len(raw) // 2]))
        spec = data.get_spec("cifar10-jpeg")
        assert "cached" not in data_cli.variant_state(spec, spec.variant("sample"), tmp_path)
    else:
        raw[-5] ^= 0xFF
        cache_file.write_bytes(bytes(raw))
    again = load_split("cifar10-jpeg", "train", root=tmp_path, variant="sample", progress=False)
    assert np.array_equal(np.asarray(again.images), first)
    assert "decoding it again" in capsys.readouterr().err


def test_a_half_extracted_folder_is_not_trusted(tmp_path):
    """A folder cut off mid-extraction (fewer images than the release) is refused, naming the counts."""
    import shutil

    spec = data.get_spec("cifar10-jpeg")
    variant = spec.variant("sample")
    folder = tmp_path.parent / f"{tmp_path.name}-cut" / "cifar10-jpeg"  # outside tmp_path: checked for real
    shutil.copytree(data.sample_dir() / "cifar10-jpeg", folder)
    assert archives.count_problem(spec, variant, folder) is None
    for image in list((folder / "train" / "truck").iterdir())[:5]:
        image.unlink()
    problem = archives.count_problem(spec, variant, folder)
    assert "holds 295 train images in 10 classes, but the sample release of cifar10-jpeg has 300" in problem
    with pytest.raises(data.DataError, match="an interrupted extraction"):
        archives._prepare_variant(spec, variant, archives.Located(folder=folder), tmp_path, progress=False)
    shutil.rmtree(folder.parent)


def test_a_full_disk_is_an_error_before_decoding_not_a_crash(tmp_path, monkeypatch):
    import errno
    import os

    from replication.data import cache

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cache.os, "posix_fallocate", no_space)
    with pytest.raises(data.DataError, match="cannot reserve .* GiB for the decoded cache in .*No space left"):
        load_split("cifar10-jpeg", "train", root=tmp_path, variant="sample", progress=False)
    assert not list((tmp_path / "cache").rglob("*.npy"))  # nothing half-written is left where it is trusted
