"""Command line: ``python -m replication <command> ...``.

Each command lives in the module that owns that part of the paper; this file
only wires them together, importing lazily so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help)
COMMANDS = {
    "data": ("replication.data", "list, check and prepare the datasets (Section 2)"),
    "train": ("replication.cli.train", "train one configuration (Section 5)"),
    "bench": ("replication.bench", "measure training and data-path speed on this machine"),
    "reproduce": ("replication.reproduce", "execute the claim notebooks into reports/<profile>/"),
}

EPILOG = """\
examples:
  python -m replication data list                 what datasets exist, where, and their state
  python -m replication data prepare cifar10-jpeg extract and cache one dataset
  python -m replication train --help              every training option and its default
  python -m replication reproduce --profile smoke execute the notebooks at smoke scale

settings (environment variables):
  REPLICATION_DATA     writable data root (default: ./data)
  REPLICATION_MIRRORS  folders with read-only dataset archives, separated by ':'
  REPLICATION_CACHE    checkpoint cache (default: ./.cache/replication)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m replication",
        description="AlexNet (Krizhevsky et al., NIPS 2012), replicated claim by claim.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as missing:
            if missing.name != module_name:
                raise
            continue  # that part of the package is not built yet
        command_parser = sub.add_parser(
            name, help=help_text, description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.cli_add_arguments(command_parser)
        command_parser.set_defaults(handler=module.cli_main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
