"""Train one configuration (Section 5 of the paper) and store it in a run store.

Every field of the training config is a flag below (or a key of a --config YAML
file, or of a --preset); together they decide the run's hash, which names its
folder in the store. A run that is already stored is not trained again; an
interrupted one resumes from its checkpoint ($REPLICATION_CACHE/<hash>/checkpoint.pt).

your own images:
  python -m replication data verify folder:~/photos          does every image decode?
  python -m replication train --preset imagenette-112 --data ~/photos
      (--data PATH is --dataset folder:PATH: PATH/train/<class>/ and PATH/val/<class>/,
      or PATH/<class>/ split into train and val by a fixed seed; see `data --help`)

where runs are stored:
  $REPLICATION_STORE when set, else the user store ~/.local/share/replication/runs
  ($XDG_DATA_HOME/replication/runs), outside the repository; --store DIR picks another
  folder, and --project-store the notebooks' store (the project's committed runs/).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

import yaml

from replication.engine import runs
from replication.engine.checkpoints import CheckpointError
from replication.engine.config import CHOICES, FIELD_HELP, TrainConfig, config_diff, config_hash
from replication.engine.trainer import NonFiniteLossError, train
from replication.paths import DEFAULT_STORE, store_dir, user_store_dir


# --------------------------------------------------------------------------
# Command line: python -m replication train ...
# --------------------------------------------------------------------------


def _optional(kind):
    def parse(text: str):
        return None if text.lower() in {"none", "null", ""} else kind(text)
    parse.__name__ = kind.__name__
    return parse


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.replace(",", " ").split())


def _mapping(text: str) -> dict:
    value = yaml.safe_load(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a mapping such as '{{arch: fig1}}', got {text!r}")
    return value


def _with_presets_help(parser: argparse.ArgumentParser) -> None:
    """Append the presets (one line each) to ``--help``, read from the recipes only when help is
    shown: the recipes live in replication.experiments, which takes seconds to import."""
    plain = parser.format_help

    def format_help() -> str:
        from replication.experiments.presets import preset_help

        return plain().rstrip("\n") + "\n\n" + preset_help() + "\n"

    parser.format_help = format_help


def cli_add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (defaults shown), plus --preset, --config FILE.yaml, --data and
    run options."""
    parser.add_argument("--preset", metavar="NAME", default=None,
                        help="start from a named recipe (listed at the end); --config and flags override its "
                             "fields (default: none, the defaults below)")
    parser.add_argument("--config", metavar="FILE.yaml", default=None,
                        help="read config fields from a YAML mapping; flags given here override it (default: none)")
    parser.add_argument("--data", metavar="PATH", default=None,
                        help="your own images: the same as --dataset folder:PATH (PATH/train/<class>/ and "
                             "PATH/val/<class>/, or PATH/<class>/ split by a fixed seed) (default: none)")
    group = parser.add_argument_group("config fields (they decide the run's hash)")
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"{FIELD_HELP[f.name]} (default: {shown if shown != '' else 'none'})".replace("%", "%%")
        if isinstance(default, bool):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=help_text)
            continue
        kind = {"model": _mapping, "lr_drop_epochs": _int_list}.get(f.name)
        if kind is None:
            annotation = str(f.type)
            base = float if "float" in annotation else int if "int" in annotation else str
            kind = _optional(base) if "None" in annotation else base
        choices = CHOICES.get(f.name)
        group.add_argument(flag, dest=f.name, type=kind, default=argparse.SUPPRESS, help=help_text,
                           choices=choices, metavar="{" + ",".join(choices) + "}" if choices else f.name.upper())
    run = parser.add_argument_group("how to run (does not change the hash)")
    run.add_argument("--device", default=None,
                     help="'cpu', 'cuda', 'cuda:1' ... (default: the GPU when there is one, else the CPU)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars (default: show them)")
    run.add_argument("--print-config", action="store_true",
                     help="print the full config and its hash, then exit without training (default: off)")
    run.add_argument("--no-store", action="store_true",
                     help="train without storing the run (checkpoints still go to the cache) (default: off)")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--store", metavar="DIR", type=Path, default=None,
                       help="store the run in DIR/<hash>/ (default: $REPLICATION_STORE when set, else the user "
                            "store $XDG_DATA_HOME/replication/runs, ~/.local/share/replication/runs, outside the "
                            f"repository; here: {user_store_dir()})")
    where.add_argument("--project-store", action="store_true",
                       help=f"store the run in the notebooks' run store: the project's committed {DEFAULT_STORE}, "
                            "or $REPLICATION_STORE when set (for maintainers adding a run a report needs) "
                            "(default: off)")
    _with_presets_help(parser)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The config: the preset's fields, then the --config file's, then the flags' (each overriding)."""
    values: dict = {}
    if getattr(args, "preset", None):
        from replication.experiments.presets import preset_values  # seconds of imports: only when used

        try:
            values.update(preset_values(args.preset))
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
    preset_data = (values.get("dataset"), values.get("data_variant"))
    given: dict = {}
    if getattr(args, "config", None):
        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        if not isinstance(loaded, dict):
            raise SystemExit(f"{args.config}: expected a YAML mapping of config fields")
        given.update(loaded)
    for f in fields(TrainConfig):
        if hasattr(args, f.name):
            given[f.name] = getattr(args, f.name)
    if getattr(args, "data", None):
        if "dataset" in given and given["dataset"] != f"folder:{args.data}":
            raise SystemExit(f"error: --data {args.data} and --dataset {given['dataset']} name two datasets; "
                             "give one (--data PATH is --dataset folder:PATH)")
        given["dataset"] = f"folder:{args.data}"
    if "dataset" in given and given["dataset"] != preset_data[0] and "data_variant" not in given:
        values.pop("data_variant", None)  # the preset's release belongs to the preset's dataset
    values.update(given)
    try:
        return TrainConfig.from_dict(values)
    except (TypeError, ValueError) as error:
        raise SystemExit(f"invalid config: {error}") from None


def store_for(args: argparse.Namespace) -> Path:
    """Where the CLI stores a run: --store DIR; --project-store, the notebooks' store (runs/, or
    $REPLICATION_STORE); else $REPLICATION_STORE, or the user store outside the repository
    (``paths.user_store_dir``), so that a user's runs never land among the committed ones."""
    if getattr(args, "store", None) is not None:
        return Path(args.store).expanduser()
    if getattr(args, "project_store", False):
        return store_dir()
    return user_store_dir()


def cli_main(args: argparse.Namespace) -> int:
    config = runs.identify(config_from_args(args))  # the data named: its release (and a folder's fingerprint)
    digest = config_hash(config)
    store = store_for(args)
    from replication.experiments.presets import narrow_init_warning

    warning = narrow_init_warning(config)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if args.print_config:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False).rstrip())
        print(f"# hash {digest}; differs from the defaults in: {sorted(config_diff(config)) or 'nothing'}")
        print(f"# stored in {store / digest}" + (" (--no-store: not stored)" if args.no_store else ""))
        return 0
    print(f"run {digest} ({config.precision}, {config.threads} threads)")
    try:
        if args.no_store:
            result = train(config, checkpoint=runs.checkpoint_path(config), progress=not args.no_progress,
                           device=args.device)
            summary = result.summary
        else:
            run = runs.get(config, progress=not args.no_progress, device=args.device, store=store)
            summary = run.summary
            if run.path is not None:  # under torchrun only rank 0 stores the run
                print(f"stored in {run.path}")
    except (NonFiniteLossError, CheckpointError, runs.RunNotStoredError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    ten_crop = (f"  ten-crop top-1 {summary['ten_crop_top1']:.4f}  top-5 {summary['ten_crop_top5']:.4f}"
                if "ten_crop_top1" in summary else "")
    print(f"val top-1 error {summary['val_top1']:.4f}  top-5 {summary['val_top5']:.4f}{ten_crop}  "
          f"epochs {summary['epochs']}  {summary['train_seconds']:.0f} s training")
    return 0
