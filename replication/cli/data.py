"""``python -m replication data {list,prepare,verify}``: the datasets of Section 2 from the command line.

examples:
  python -m replication data list                          every dataset, its variants and state
  python -m replication data prepare cifar10-jpeg          extract + cache train and test
  python -m replication data prepare tiny-imagenet-200 --size 32
  python -m replication data prepare cifar10 --download    fetch the official CIFAR-10 (online)
  python -m replication data verify                        re-hash archives, recount images
  python -m replication data list folder:~/photos          your own images: real counts, classes, names
  python -m replication data verify folder:~/photos        ... and does every image decode?
  python -m replication data prepare folder:~/photos --size 128   decode them once (else: on first use)

Images are resized only when a size other than the native one is asked for, the
way Section 2 of the paper does it: shorter side to the size, then the central
square crop.
"""

# `list` prints every dataset and release with where it is (cached sizes, extracted
# folder, archive and whether its checksum was verified) or how to get it; `prepare`
# extracts a release and decodes its train and test caches; `verify` re-hashes
# archives, recounts the images of extracted folders and checks caches. A folder of your
# own images (folder:PATH) has no registered counts: `list` shows what it holds and
# `verify` checks that it is usable (data/folders.py). (A comment: the docstring above is
# the text of `python -m replication data --help`.)

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from replication.data.archives import _how_to_get, _stamp_ok, locate, verify_archive
from replication.data.cache import (_cache_complete, _cache_files, _default_workers, _load_cache, _prepare_choice,
                                    cache_dir, folder_fingerprint, load_split)
from replication import data as data_package
from replication.data.folders import check_folder, class_counts, describe_folder
from replication.data.layouts import LAYOUTS
from replication.data.registry import DATASETS, FOLDER_PREFIX, DataError, DatasetSpec, Variant, _root, get_spec
from replication.paths import mirror_dirs

# --help shows where the data lives (the package's own docstring, written once) and these examples
__doc__ = data_package.__doc__.split("\ncommand line:")[0].rstrip() + "\n\n" + __doc__.split("\n\n", 1)[1]


def _cached_sizes(root: Path, variant: Variant) -> list[str]:
    folder = cache_dir(root) / variant.id
    if not folder.is_dir():
        return []
    found: dict[int, list[str]] = {}
    for meta_file in sorted(folder.glob("*px.json")):
        match = re.fullmatch(r"(\w+)-(\d+)px\.json", meta_file.name)
        if match and _cache_complete(root, variant, match.group(1), int(match.group(2))):
            found.setdefault(int(match.group(2)), []).append(match.group(1))
    return [f"{s}px ({'+'.join(splits)})" for s, splits in sorted(found.items())]


def variant_state(spec: DatasetSpec, variant: Variant, root: Path, path: Path | None = None) -> str:
    """One line: cached sizes, extracted folder, archive (and whether verified), or how to get it."""
    located = locate(spec, variant, root, path)
    parts = []
    cached = _cached_sizes(root, variant)
    if cached:
        parts.append("cached " + ", ".join(cached))
    if located.folder is not None:
        parts.append(f"extracted at {located.folder}")
    elif located.archive is not None:
        verified = "checksum verified" if _stamp_ok(root, located.archive, variant.archive) else "not yet verified"
        parts.append(f"archive at {located.archive} ({verified})")
    if not parts:
        return "missing - " + _how_to_get(spec, variant)
    return "; ".join(parts)


_SHOWN_CLASSES = 20  # data list folder:PATH names this many classes, then counts the rest


def _print_folder(name: str, root: Path) -> int:
    """``data list folder:PATH``: the real counts and classes of your images, and their caches."""
    summary = describe_folder(name, root)
    spec = summary.spec
    print(f"{spec.name}  (your images)")
    print(f"  layout:  {summary.layout}")
    for own, listing in summary.listings.items():
        print(f"  {own + ':':<8} {len(listing):,} images in {len(listing.classes)} classes")
    for problem in summary.problems:
        print(f"  problem: {problem}")
    if not summary.listings:
        return 1
    listings = list(summary.listings.values())
    first = listings[0]
    names = ("words from " + str(summary.names_from) if summary.names_from else
             "the folder names (put a words.txt of <id><tab><words> lines, or a LOC_synset_mapping.txt of "
             "<id> <words> lines, in the folder to name them in words)")
    print(f"  names:   {names}")
    counts = {own: dict(zip(listing.classes, class_counts(listing))) for own, listing in summary.listings.items()}
    for cls, word in list(zip(first.classes, first.class_names))[:_SHOWN_CLASSES]:
        label = cls if word == cls else f"{cls} ({word})"
        per_split = ", ".join(f"{counts[own].get(cls, 0):,} {own}" for own in counts)
        print(f"    {label}: {per_split}")
    if len(first.classes) > _SHOWN_CLASSES:
        print(f"    ... and {len(first.classes) - _SHOWN_CLASSES} more classes")
    if summary.fingerprint:
        state = ("cached " + ", ".join(summary.cached)) if summary.cached else \
            f"not decoded yet (decoded on first use, or: python -m replication data prepare {spec.name} --size S)"
        print(f"  state:   {state}")
        print(f"  fingerprint: {summary.fingerprint} (a run's data_fingerprint: changing a file trains anew)")
    print(f"check every image: python -m replication data verify {spec.name}")
    return 0 if not summary.problems else 1


def _print_list(root: Path, names: list[str] | None = None) -> int:
    names = names or []
    folders = [name for name in names if name.startswith(FOLDER_PREFIX)]
    registered = [get_spec(name) for name in names if not name.startswith(FOLDER_PREFIX)]
    status = 0
    for name in folders:
        status |= _print_folder(name, root)
    if folders and not registered:
        return status
    mirrors = mirror_dirs()
    print(f"data root: {root}  (REPLICATION_DATA)")
    print(f"mirrors:   {os.pathsep.join(map(str, mirrors)) or '(none; set REPLICATION_MIRRORS)'}")
    print()
    header = f"{'NAME':<18} {'TRAIN/TEST':<17} {'CLASSES':>7}  DESCRIPTION"
    print(header)
    print("-" * 100)
    for spec in registered or DATASETS.values():
        counts = "/".join(f"{spec.counts[s]:,}" for s in ("train", spec.held_out()))
        print(f"{spec.name:<18} {counts:<17} {spec.num_classes:>7}  {spec.description}")
        for variant in spec.variants:
            print(f"  variant {variant.label}: {variant.description}")
            print(f"    state: {variant_state(spec, variant, root)}")
    print()
    print("get one ready: python -m replication data prepare NAME [--size S] [--variant V]")
    print("your own images: python -m replication data list folder:PATH (train/<class>/ and val/<class>/, "
          "or one folder a class)")
    return status


def _prepare_cli(args: argparse.Namespace, root: Path) -> int:
    for name in args.names:
        spec = get_spec(name)
        v, folder = _prepare_choice(spec, root, args.variant, args.size, args.download, not args.quiet, args.path)
        print(f"{name} [{v.label}]: " + ("your images at" if spec.folder else "extracted at") + f" {folder}")
        if spec.env_var and args.size is None:
            print("  no cache built (ImageNet is streamed; pass --size S to decode an array cache)")
            continue
        fingerprint = folder_fingerprint(spec, folder) if spec.supplied else None
        for split in ("train", "test"):
            loaded = load_split(name, split, root=root, size=args.size, progress=not args.quiet,
                                variant=v.label, workers=args.workers, path=args.path)
            files = _cache_files(root, v, loaded.split, loaded.size, fingerprint)
            print(f"  {loaded.split:<5} {len(loaded):>9,} images {loaded.size}px -> {files['images']}")
    return 0


def _verify_variant(spec: DatasetSpec, variant: Variant, root: Path, path: Path | None) -> list[tuple[bool, str]]:
    """(ok, line) for every archive copy, extracted folder and cache of one variant."""
    results = []
    if variant.archive is not None:
        for place in [root] + mirror_dirs():
            archive = place / variant.archive.filename
            if archive.is_file():
                try:
                    verify_archive(archive, variant.archive, root, force=True)
                    results.append((True, f"archive {archive} checksum OK"))
                except DataError as error:
                    results.append((False, f"archive FAILED: {error}"))
    located = locate(spec, variant, root, path)
    results += [(False, f"unusable folder: {problem}") for problem in located.problems]
    if located.folder is not None:
        for own in (spec.splits["train"], spec.held_out()):
            try:
                n, want = len(LAYOUTS[spec.layout](located.folder, own)), (variant.counts or spec.counts)[own]
            except (DataError, OSError) as error:
                results.append((False, f"{own} in {located.folder} FAILED: {error}"))
                continue
            status = "OK" if n == want else f"MISMATCH (expected {want:,})"
            results.append((n == want, f"{own} {n:,} images in {located.folder} {status}"))
    for meta_file in sorted((cache_dir(root) / variant.id).glob("*px.json")):
        match = re.fullmatch(r"(\w+)-(\d+)px\.json", meta_file.name)
        if not match:
            continue
        loaded = _load_cache(spec, variant, match.group(1),
                             _cache_files(root, variant, match.group(1), int(match.group(2))))
        ok = loaded is not None
        results.append((ok, f"cache {meta_file.with_suffix('.npy')} " + (f"{len(loaded):,} images OK" if ok else
                        "INCOMPLETE (delete it; the next load rebuilds it)")))
    return results


def _verify_cli(args: argparse.Namespace, root: Path) -> int:
    failures = 0
    for name in args.names or list(DATASETS):
        if name.startswith(FOLDER_PREFIX):  # your images: no registered counts; is every image usable?
            results = check_folder(name, root, progress=not args.quiet, workers=args.workers)
            failures += sum(not ok for ok, _ in results)
            for ok, line in results:
                print(f"{get_spec(name).name}: {line}" + ("" if ok else "  [FAILED]"))
            continue
        spec = get_spec(name)
        for variant in spec.variants:
            results = _verify_variant(spec, variant, root, args.path)
            for ok, line in results or [(True, "not present")]:
                failures += not ok
                print(f"{spec.name} [{variant.label}]: {line}")
    return 1 if failures else 0


def cli_add_arguments(parser: argparse.ArgumentParser) -> None:
    """`python -m replication data {list,prepare,verify}`."""
    root_help = "data root (default: $REPLICATION_DATA or <repo>/data)"
    parser.add_argument("--root", type=Path, default=None, help=root_help)
    common = argparse.ArgumentParser(add_help=False)  # --root also after the subcommand
    common.add_argument("--root", type=Path, default=argparse.SUPPRESS, help=root_help)
    sub = parser.add_subparsers(dest="data_command", metavar="{list,prepare,verify}")
    lister = sub.add_parser("list", parents=[common], help="every dataset and variant: image counts and where "
                            "it is (cached, extracted, archive found) or how to get it; folder:PATH: your images")
    lister.add_argument("names", nargs="*", metavar="NAME",
                        help="datasets to show (default: every registered one); folder:PATH shows the real "
                             "counts, classes and names of your images")
    prep = sub.add_parser(
        "prepare", parents=[common], help="find, check and extract a dataset, then decode its train and test caches",
        description="Find the archive (data root, then REPLICATION_MIRRORS), check its checksum, "
                    "extract it into the data root and decode train and test into "
                    "<root>/cache/<variant>/<split>-<size>px.npy.")
    prep.add_argument("names", nargs="+", metavar="NAME",
                      help=f"dataset name: {', '.join(DATASETS)}, or folder:PATH for your own images")
    prep.add_argument("--size", type=int, default=None,
                      help="square side in pixels (default: native size; otherwise shorter side "
                           "rescaled to S, central crop, as in Section 2)")
    prep.add_argument("--variant", default=None,
                      help="release to use, e.g. 32px or 64px for tiny-imagenet-200 (default: the "
                           "one present, preferring native size == --size)")
    prep.add_argument("--download", action="store_true",
                      help="download the public archive when nothing is found (needs network)")
    prep.add_argument("--path", type=Path, default=None,
                      help="a dataset folder you supply (ImageNet; or set REPLICATION_IMAGENET)")
    prep.add_argument("--workers", type=int, default=None,
                      help=f"decoding processes (default: {_default_workers()})")
    prep.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    ver = sub.add_parser("verify", parents=[common], help="re-hash archives and recount the images of extracted folders")
    ver.add_argument("names", nargs="*", metavar="NAME",
                     help="datasets to check (default: every registered one); folder:PATH checks your images: "
                          "each split has images, classes agree, no class folder is empty, every image decodes")
    ver.add_argument("--path", type=Path, default=None, help="a dataset folder you supply (ImageNet)")
    ver.add_argument("--workers", type=int, default=None,
                     help=f"decoding processes for folder:PATH (default: {_default_workers()})")
    ver.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def cli_main(args: argparse.Namespace) -> int:
    root = _root(getattr(args, "root", None))
    command = getattr(args, "data_command", None) or "list"
    try:
        if command == "prepare":
            return _prepare_cli(args, root)
        if command == "verify":
            return _verify_cli(args, root)
        return _print_list(root, getattr(args, "names", None))
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
