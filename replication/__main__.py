"""Command line: ``python -m replication <command> ...``.

Each command is a module of replication/cli/ (its argparse and printing; the work
stays in the library); this file only wires them together, importing lazily so
``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from replication.paths import env_flag

# command -> (module, one-line help)
COMMANDS = {
    "data": ("replication.cli.data", "list, check and prepare the datasets (Section 2)"),
    "train": ("replication.cli.train", "train one configuration (Section 5)"),
    "bench": ("replication.cli.bench", "measure training and data-path speed on this machine"),
    "reproduce": ("replication.cli.reproduce", "execute the claim notebooks into reports/<profile>/"),
    "compare": ("replication.cli.compare", "compare two report folders claim by claim (a re-run vs the committed)"),
    "site": ("replication.cli.site", "render reports/ as a static web site (./site/index.html)"),
    "figures": ("replication.cli.figures", "draw the figures of stored runs (curves, Fig. 3 kernels, Fig. 4, classes)"),
}

EPILOG = """\
examples:
  python -m replication data list                 what datasets exist, where, and their state
  python -m replication data prepare cifar10-jpeg extract and cache one dataset
  python -m replication train --help              every training option and its default, and the presets
  python -m replication data list folder:PATH     your own images: train/<class>/ + val/<class>/, or <class>/
  python -m replication train --preset imagenette-112 --data PATH   train on them (runs go outside runs/)
  python -m replication reproduce --profile smoke execute the notebooks at smoke scale
  python -m replication reproduce --store fresh --reports fresh-reports   retrain a profile aside (no runs/ used)
  python -m replication compare reports/cpu fresh-reports/cpu             the re-run beside the committed reports
  python -m replication site                      the reports as a web page: open site/index.html
  python -m replication figures RUN_ID            PNGs of a stored run into ./figures/<run id>/

settings (environment variables):
  REPLICATION_DATA     writable data root (default: ./data)
  REPLICATION_MIRRORS  folders with read-only dataset archives, separated by ':'
  REPLICATION_CACHE    checkpoint cache (default: ./.cache/replication)
  REPLICATION_STORE    the run store (default: ./runs, committed, for the notebooks; `train` stores in
                       ~/.local/share/replication/runs unless this is set or --project-store is given)
  REPLICATION_STORE_READONLY  1: a run missing from the store is an error instead of a training run
  REPLICATION_TRACEBACK       1: show full tracebacks instead of one error line
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m replication",
        description="AlexNet (Krizhevsky et al., NIPS 2012), replicated claim by claim.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--traceback", action="store_true",
                        help="show the full Python traceback of an error (also: REPLICATION_TRACEBACK=1)")
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


def _known_errors() -> tuple[type[BaseException], ...]:
    """The package's own errors: each message already names the problem and its fix. Imported
    here, not at the top, so that ``--help`` does not pay for torch's start-up."""
    from replication.data import DataError
    from replication.engine.checkpoints import CheckpointError
    from replication.engine.runs import RunNotStoredError, StoreError, UnknownRunError
    from replication.engine.trainer import NonFiniteLossError
    from replication.models import ModelConfigError
    from replication.profiles import ParameterError

    return (DataError, CheckpointError, RunNotStoredError, StoreError, UnknownRunError, NonFiniteLossError,
            ModelConfigError, ParameterError, ValueError, FileNotFoundError, PermissionError)


def main(argv: list[str] | None = None) -> int:
    """Run one command; a known error ends in one ``error:`` line on stderr and exit status 1
    (``--traceback`` or REPLICATION_TRACEBACK=1 shows the whole trace instead)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted (a training run resumes from its last checkpoint)", file=sys.stderr)
        return 130
    except Exception as error:
        if args.traceback or env_flag("REPLICATION_TRACEBACK") or not isinstance(error, _known_errors()):
            raise
        message = str(error).strip() or type(error).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
