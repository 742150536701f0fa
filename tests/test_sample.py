"""The committed data sample (data/sample/): what it holds, that it is what its
manifest says, that the package reads it like the full releases, and (where the
mirrors are) that it is a byte-for-byte cut of the real archives."""

from __future__ import annotations

import hashlib
import tarfile
from collections import Counter

import numpy as np
import pytest

from replication import data
from replication.data import sample

MANIFEST = sample.read_manifest()
SMALL_ENOUGH = 8_000_000  # bytes: "a few MB"


def test_every_file_is_in_the_manifest_with_its_sha256():
    listed = {f"{entry['folder']}/{rel}": digest
              for entry in MANIFEST["datasets"].values() for rel, digest in entry["files"].items()}
    present = {str(p.relative_to(sample.SAMPLE_DIR)) for p in sample.SAMPLE_DIR.rglob("*") if p.is_file()}
    assert present - set(listed) == {sample.MANIFEST, "README.md"}
    assert set(listed) <= present
    changed = [rel for rel, digest in listed.items() if sample.file_sha256(sample.SAMPLE_DIR / rel) != digest]
    assert not changed, f"files differ from data/sample/MANIFEST.json: {changed[:5]}"
    size = sum((sample.SAMPLE_DIR / rel).stat().st_size for rel in listed)
    assert size < SMALL_ENOUGH


@pytest.mark.parametrize("name", [plan[0] for plan in sample.PLAN])
def test_the_sample_comes_from_the_registered_archive(name):
    entry = MANIFEST["datasets"][name]
    registered = [v.archive for v in data.get_spec(name).variants if v.archive]
    assert (entry["archive"], entry["archive_sha256"]) in {(a.filename, a.sha256) for a in registered}


@pytest.mark.parametrize("name", [plan[0] for plan in sample.PLAN])
def test_the_sample_variant_loads_with_its_counts_per_class(name, tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATION_DATA", str(tmp_path))
    monkeypatch.delenv("REPLICATION_MIRRORS", raising=False)
    spec = data.get_spec(name)
    variant = spec.variant("sample")
    entry = MANIFEST["datasets"][name]
    for split in ("train", "test"):
        own = spec.splits[split]
        loaded = data.load_split(name, split, variant="sample", progress=False)
        assert len(loaded) == variant.counts[own] == entry["images"][own]
        assert len(loaded.classes) == spec.num_classes
        assert set(Counter(loaded.labels.tolist()).values()) == {entry["per_class"][own]}
        assert loaded.images.dtype == np.uint8 and loaded.images.shape[1:] == (variant.size, variant.size, 3)


def test_the_sample_is_never_a_silent_stand_in_for_the_full_dataset(tmp_path, monkeypatch):
    """Training on 300 images while believing it was CIFAR-10 would be silently wrong: without
    the full release the error names the sample as an explicit choice instead."""
    monkeypatch.setenv("REPLICATION_DATA", str(tmp_path))
    monkeypatch.setenv("REPLICATION_MIRRORS", str(tmp_path / "no-mirror"))
    with pytest.raises(data.DatasetNotFoundError, match="variant 'sample'") as caught:
        data.load_split("cifar10-jpeg", "train", progress=False)
    assert "Looked at" in str(caught.value)


@pytest.mark.parametrize("name", [plan[0] for plan in sample.PLAN])
def test_the_sample_is_a_cut_of_the_real_archive(name, mirror):
    """Full-data check (needs the mirrors): each sample image is byte-identical to its archive member."""
    entry = MANIFEST["datasets"][name]
    archive = mirror(entry["archive"])
    images = {rel: digest for rel, digest in entry["files"].items() if rel.lower().endswith((".jpg", ".jpeg"))}
    found = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            rel = member.name.split("/", 1)[1] if "/" in member.name else member.name
            if member.isfile() and rel in images:
                found[rel] = hashlib.sha256(tar.extractfile(member).read()).hexdigest()
    assert found == images
