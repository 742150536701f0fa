"""The committed data sample: a few real images per class of each mirrored dataset.

The tests and the ``smoke`` profile read this sample, so that ``make test`` and
``make smoke`` work on a fresh clone with nothing downloaded. It is cut from
the real archives (never generated) by this script, and everything about the
cut is recorded in ``data/sample/MANIFEST.json``: the archive each dataset
came from with its sha256, the seed, the images per class, and every file of
the sample with its own sha256 (checked by ``tests/test_sample.py``).

    python -m replication.data.sample --mirrors ../shared/data      # rewrite data/sample/

Which images: for each class and split, ``PER_CLASS`` images drawn without
replacement by ``numpy.random.default_rng(SEED)`` from the class's files in
name order. The sample keeps each dataset's own layout (Tiny ImageNet's
``val_annotations.txt`` and ``words.txt`` cut to the chosen images and its 200
classes), so the package reads it with the same parsers as the full release.
Bounding-box files are left out; nothing reads them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tarfile
from pathlib import Path

import numpy as np

from replication.data.archives import _file_digest
from replication.data.layouts import _natural_key
from replication.data.registry import get_spec
from replication.paths import SAMPLE_DIR, atomic_dir

MANIFEST = "MANIFEST.json"
SEED = 0

#: (dataset, archive, folder in the sample, layout, {split: images per class})
PLAN = (
    ("cifar10-jpeg", "cifar10-jpeg.tgz", "cifar10-jpeg", "image_tree", {"train": 30, "test": 20}),
    ("tiny-imagenet-200", "tiny-imagenet-200-32px.tgz", "tiny-imagenet-200-32px", "tiny_imagenet",
     {"train": 10, "val": 2}),
    ("imagenette2-128", "imagenette2-128px.tgz", "imagenette2-128", "image_tree", {"train": 16, "val": 8}),
)


def read_manifest(folder: Path | None = None) -> dict:
    """The manifest of the committed sample (raises FileNotFoundError when it is missing)."""
    return json.loads(((folder or SAMPLE_DIR) / MANIFEST).read_text())


def file_sha256(path: Path) -> str:
    return _file_digest(Path(path), "sha256")


def _choose(names: list[str], count: int, rng: np.random.Generator) -> list[str]:
    names = sorted(names, key=_natural_key)
    if len(names) < count:
        raise ValueError(f"a class has only {len(names)} images, the sample wants {count}")
    picked = rng.choice(len(names), size=count, replace=False)
    return sorted((names[i] for i in picked), key=_natural_key)


def _strip_top(name: str) -> str:
    return name.split("/", 1)[1] if "/" in name else name


def _cut_image_tree(members: dict[str, tarfile.TarInfo], per_split: dict[str, int],
                    rng: np.random.Generator) -> dict[str, str]:
    """``<split>/<class>/<image>`` -> {path in sample: path in archive}."""
    by_class: dict[tuple[str, str], list[str]] = {}
    for name in members:
        parts = _strip_top(name).split("/")
        if len(parts) == 3 and parts[0] in per_split:
            by_class.setdefault((parts[0], parts[1]), []).append(parts[2])
    top = next(iter(members)).split("/", 1)[0]
    chosen = {}
    for (split, cls) in sorted(by_class):
        for image in _choose(by_class[(split, cls)], per_split[split], rng):
            chosen[f"{split}/{cls}/{image}"] = f"{top}/{split}/{cls}/{image}"
    return chosen


def _cut_tiny_imagenet(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], per_split: dict[str, int],
                       rng: np.random.Generator) -> tuple[dict[str, str], dict[str, bytes]]:
    """Tiny ImageNet's layout; returns the chosen images and the rewritten text files."""
    top = next(iter(members)).split("/", 1)[0]
    read = lambda rel: tar.extractfile(members[f"{top}/{rel}"]).read().decode()  # noqa: E731
    wnids = sorted(read("wnids.txt").split())
    chosen = {}
    for wnid in wnids:
        prefix = f"{top}/train/{wnid}/images/"
        names = [n[len(prefix):] for n in members if n.startswith(prefix)]
        for image in _choose(names, per_split["train"], rng):
            chosen[f"train/{wnid}/images/{image}"] = prefix + image
    rows = [line.split("\t") for line in read("val/val_annotations.txt").splitlines() if line.strip()]
    kept_rows = []
    for wnid in wnids:
        mine = {r[0]: r for r in rows if r[1] == wnid}
        for image in _choose(list(mine), per_split["val"], rng):
            chosen[f"val/images/{image}"] = f"{top}/val/images/{image}"
            kept_rows.append(mine[image])
    kept_rows.sort(key=lambda r: _natural_key(r[0]))
    words = [line for line in read("words.txt").splitlines() if line.split("\t", 1)[0] in set(wnids)]
    texts = {
        "wnids.txt": ("\n".join(wnids) + "\n").encode(),
        "words.txt": ("\n".join(words) + "\n").encode(),
        "val/val_annotations.txt": ("\n".join("\t".join(r) for r in kept_rows) + "\n").encode(),
    }
    return chosen, texts


def cut(mirrors: Path, out: Path = SAMPLE_DIR) -> dict:
    """Cut the sample from the archives in ``mirrors`` into ``out`` (replaced atomically)."""
    rng = np.random.default_rng(SEED)
    manifest = {"seed": SEED, "made_by": "python -m replication.data.sample", "datasets": {}}
    with atomic_dir(out) as staging:
        for name, archive_name, folder, layout, per_split in PLAN:
            archive = Path(mirrors) / archive_name
            registered = next(v.archive for v in get_spec(name).variants  # the registered sha256
                              if v.archive and v.archive.filename == archive_name)
            digest = _file_digest(archive, "sha256")
            if digest != registered.sha256:
                raise SystemExit(f"{archive}: sha256 {digest} is not the registered {registered.sha256}")
            print(f"{name}: cutting {per_split} images per class from {archive}", file=sys.stderr)
            with tarfile.open(archive, "r:*") as tar:
                members = {m.name: m for m in tar.getmembers() if m.isfile()}
                texts: dict[str, bytes] = {}
                if layout == "tiny_imagenet":
                    chosen, texts = _cut_tiny_imagenet(tar, members, per_split, rng)
                else:
                    chosen = _cut_image_tree(members, per_split, rng)
                files = {rel: tar.extractfile(members[member]).read() for rel, member in sorted(chosen.items())}
                files.update(texts)
            for rel, payload in files.items():
                target = staging / folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(payload)
            manifest["datasets"][name] = {
                "archive": archive_name, "archive_sha256": digest, "folder": folder, "layout": layout,
                "per_class": per_split,
                "images": {split: sum(1 for r in chosen if r.startswith(f"{split}/")) for split in per_split},
                "files": {rel: hashlib.sha256(files[rel]).hexdigest() for rel in sorted(files)},
            }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        (staging / "README.md").write_text(README)
    return manifest


README = """\
# The committed data sample

A few real images per class of each dataset the project mirrors, cut from the
archives by `python -m replication.data.sample --mirrors <folder of the archives>`
(see that module). `MANIFEST.json` records each archive's sha256, the seed, the
images per class and the sha256 of every file here. The tests and the `smoke`
profile read this sample (the datasets' `sample` variant), so both work with
nothing downloaded. It is for checking that the code runs, not for results:
every report says which variant its numbers come from.

The images belong to their sources (CIFAR-10; Tiny ImageNet and Imagenette, subsets
of ImageNet) and are here for non-commercial research and teaching.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m replication.data.sample",
        description="Cut the committed data sample (data/sample/) from the real dataset archives.")
    parser.add_argument("--mirrors", type=Path, required=True,
                        help="folder holding cifar10-jpeg.tgz, tiny-imagenet-200-32px.tgz, imagenette2-128px.tgz")
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help=f"where to write it (default {SAMPLE_DIR})")
    args = parser.parse_args(argv)
    manifest = cut(args.mirrors, args.out)
    for name, entry in manifest["datasets"].items():
        print(f"{name}: {entry['images']} images -> {args.out / entry['folder']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
