"""Train one configuration (Section 5 of the paper) and store it in the run store.

Every field of the training config is a flag below (or a key of a --config YAML
file); together they decide the run's hash, which names its folder in the store
(runs/<hash>/, or $REPLICATION_STORE). A run that is already stored is not
trained again; an interrupted one resumes from its checkpoint
($REPLICATION_CACHE/<hash>/checkpoint.pt).
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


def cli_add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (defaults shown), plus --config FILE.yaml and run options."""
    parser.add_argument("--config", metavar="FILE.yaml", default=None,
                        help="read config fields from a YAML mapping; flags given here override it (default: none)")
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
                     help="train without writing runs/<hash>/ (checkpoints still go to the cache) (default: off)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values: dict = {}
    if getattr(args, "config", None):
        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        if not isinstance(loaded, dict):
            raise SystemExit(f"{args.config}: expected a YAML mapping of config fields")
        values.update(loaded)
    for f in fields(TrainConfig):
        if hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    try:
        return TrainConfig.from_dict(values)
    except (TypeError, ValueError) as error:
        raise SystemExit(f"invalid config: {error}") from None


def cli_main(args: argparse.Namespace) -> int:
    config = runs.identify(config_from_args(args))  # the data named: its release (and a folder's fingerprint)
    digest = config_hash(config)
    if args.print_config:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False).rstrip())
        print(f"# hash {digest}; differs from the defaults in: {sorted(config_diff(config)) or 'nothing'}")
        return 0
    print(f"run {digest} ({config.precision}, {config.threads} threads)")
    try:
        if args.no_store:
            result = train(config, checkpoint=runs.checkpoint_path(config), progress=not args.no_progress,
                           device=args.device)
            summary = result.summary
        else:
            run = runs.get(config, progress=not args.no_progress, device=args.device)
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
