"""Migrate a run store to the current identity of a run: the stored numbers stay, the hashes move.

A run's hash names everything that changes its numbers. When the identity grows
(the concrete release of the data, ``data_variant``, and the CPU thread count,
``threads``) or a spelling changes (LRN: the convention's name or None, where the
conv-local net once took true/false), runs stored before do not match, so they must be
renamed, never retrained by accident and never silently matched to a config they
were not trained with. For each stored run this fills the new fields from what
the run itself recorded, and moves the folder to the new hash:

- ``threads`` from the summary's ``hardware.torch_threads``;
- ``data_variant`` from the one full release of its dataset that the project's
  machines had (the mirrors; checked against the number of classes and, for a
  run on a whole split, the image count the summary recorded).

    python -m replication.cli.migrate                 # the run store (runs/, or $REPLICATION_STORE)
    python -m replication.cli.migrate --dry-run       # say what would move

The classical baselines' records (``runs/baselines/<kind>-<hash>.json``) are renamed the
same way (their release named, ``data_variant``) and sealed with their own sha256.

Each moved run keeps its metrics, summary and artifacts byte for byte, except the
config record and the summary's ``config_hash``; it is re-sealed (manifest.json)
and verified before the old folder is removed. Running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from replication.data.registry import get_spec
from replication.engine.config import TrainConfig, config_diff, config_hash
from replication.engine.runs import HASH_SCHEMA, MANIFEST, StoreError, seal, verify
from replication.experiments import baselines
from replication.experiments.baselines import BaselineConfig
from replication.paths import atomic_dir, atomic_write_text, store_dir

#: The release every stored run of a dataset was trained on: the project's mirror archives.
MIRROR_RELEASES = {"cifar10-jpeg": "mirror", "tiny-imagenet-200": "32px", "imagenette2-128": "mirror"}


def migrated_model(model: dict) -> dict:
    """A stored model spec in today's single LRN spelling: the convention's name, or None for none
    (the conv-local net once took ``lrn: true/false`` with a separate ``lrn_convention``, and
    AlexNet also took ``true``/``false``/``"none"``)."""
    spec = dict(model)
    if "lrn" not in spec:
        return spec
    lrn = spec["lrn"]
    if spec.get("arch") == "conv_local":
        convention = spec.pop("lrn_convention", "alpha_over_n")
        spec["lrn"] = (convention if lrn is True else None if lrn in (False, None) else lrn)
    elif lrn is True:
        spec["lrn"] = "paper"
    elif lrn is False or (isinstance(lrn, str) and lrn.lower() == "none"):
        spec["lrn"] = None
    return spec


def migrated_config(config: dict, summary: dict) -> dict:
    """The stored config with the identity fields it lacked, read from what the run recorded, and
    its model spec in today's spelling."""
    values = dict(config)
    if "model" in values:
        values["model"] = migrated_model(values["model"])
    if "threads" not in config:
        threads = (summary.get("hardware") or {}).get("torch_threads")
        if not isinstance(threads, int) or threads < 1:
            raise StoreError(f"run {summary.get('config_hash')}: its summary records no thread count")
        values["threads"] = threads
    dataset = values.get("dataset", TrainConfig().dataset)
    if dataset != "synthetic" and values.get("data_variant") is None:
        if dataset not in MIRROR_RELEASES:
            raise StoreError(f"run {summary.get('config_hash')} on {dataset!r}: no known release to record; "
                             "set its data_variant by hand")
        spec = get_spec(dataset)
        variant = spec.variant(MIRROR_RELEASES[dataset])
        if summary.get("classes") not in (None, spec.num_classes):
            raise StoreError(f"run {summary.get('config_hash')}: {summary.get('classes')} classes, "
                             f"not the {spec.num_classes} of {dataset}")
        if values.get("train_per_class") is None and summary.get("train_images") not in (
                None, (variant.counts or spec.counts)[spec.splits["train"]]):
            raise StoreError(f"run {summary.get('config_hash')}: {summary.get('train_images')} training images "
                             f"is not the {variant.label} release of {dataset}")
        values["data_variant"] = variant.label
    return values


def migrate_run(folder: Path, dry_run: bool = False) -> Path | None:
    """Move one stored run to its hash under the current identity; returns the new folder, or
    None when it is already there."""
    folder = Path(folder)
    verify(folder)
    record = json.loads((folder / "config.json").read_text())
    summary = json.loads((folder / "summary.json").read_text())
    config = TrainConfig.from_dict(migrated_config(record["config"], summary))
    new_hash = config_hash(config)
    # fields added later with their old behaviour as default (holdout_per_class, layer_seeds ...) are
    # filled in on load and leave the hash alone: such a run needs no move
    if new_hash == folder.name and TrainConfig.from_dict(record["config"]) == config:
        return None
    target = folder.parent / new_hash
    if dry_run:
        return target
    if (target / "summary.json").exists():
        raise StoreError(f"{folder} would move to {target}, which holds a run already; compare the two by hand")
    with atomic_dir(target) as tmp:
        for item in folder.iterdir():
            if item.is_file() and item.name not in ("config.json", "summary.json", MANIFEST):
                shutil.copy2(item, tmp / item.name)
        new_record = {"hash": new_hash, "schema": HASH_SCHEMA, "differs_from_defaults": config_diff(config),
                      "config": config.to_dict(), "migrated_from": folder.name}
        (tmp / "config.json").write_text(json.dumps(new_record, indent=1, sort_keys=True, allow_nan=False) + "\n")
        (tmp / "summary.json").write_text(json.dumps({**summary, "config_hash": new_hash}, indent=1, sort_keys=True,
                                                     allow_nan=False) + "\n")
        seal(tmp)
        verify(tmp)
    shutil.rmtree(folder)
    return target


def migrate_baseline(path: Path, dry_run: bool = False) -> Path | None:
    """Rename one baseline record to the hash of its config with the release named."""
    record = json.loads(Path(path).read_text())
    config = BaselineConfig(**record["config"])
    if config.data_variant is None and config.dataset in MIRROR_RELEASES:
        config = config.replace(data_variant=MIRROR_RELEASES[config.dataset])
    threads = record.get("hardware", {}).get("torch_threads")
    if isinstance(threads, int) and threads != config.threads:
        config = config.replace(threads=threads)
    target = Path(path).with_name(f"{config.kind}-{config.hash}.json")
    # fields added to BaselineConfig later are left out of old records while at their defaults
    if target == Path(path) and BaselineConfig(**record["config"]) == config and "sha256" in record:
        return None
    if not dry_run:
        moved = {**record, "hash": config.hash, "config": config.to_dict()}
        if record["hash"] != config.hash:
            moved["migrated_from"] = record["hash"]
        atomic_write_text(target, json.dumps(baselines.seal(moved), indent=1, sort_keys=True) + "\n")
        if target != Path(path):
            Path(path).unlink()
    return target


def migrate_store(store: Path | None = None, dry_run: bool = False, log=print) -> dict[str, str]:
    """Migrate every run and baseline record of a store; returns {old name: new name} of those that moved."""
    store = Path(store or store_dir())
    moved = {}
    for folder in sorted(p for p in store.iterdir() if (p / "summary.json").exists()):
        target = migrate_run(folder, dry_run)
        if target is not None:
            moved[folder.name] = target.name
            log(f"{'would move' if dry_run else 'moved'} {folder.name} -> {target.name}")
    for path in sorted((store / "baselines").glob("*.json")):
        target = migrate_baseline(path, dry_run)
        if target is not None:
            moved[path.name] = target.name
            log(f"{'would move' if dry_run else 'moved'} baselines/{path.name} -> {target.name}")
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replication.cli.migrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=None, help="the store (default: runs/ or $REPLICATION_STORE)")
    parser.add_argument("--dry-run", action="store_true", help="say what would move, move nothing")
    args = parser.parse_args(argv)
    try:
        moved = migrate_store(args.store, args.dry_run)
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{len(moved)} run(s) {'would move' if args.dry_run else 'moved'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
