"""Execute the claim notebooks into reports/<profile>/ (papermill), then rebuild the index.

  python -m replication reproduce                       every notebook, cpu profile
  python -m replication reproduce --profile smoke       the CI scale (make smoke)
  python -m replication reproduce --only 01 03          some notebooks, by number
  python -m replication reproduce -p seeds "[0, 1]"     override a parameter (YAML value)
  python -m replication reproduce --index-only          only regenerate reports/README.md

Each notebook notebooks/NN_topic.ipynb runs with the parameters of
profiles/<profile>.yaml (as `papermill -f` would pass them) on the `python3`
kernel, which must be this environment's ipykernel. It runs in a staging
folder under build/; only when every cell succeeds are the executed notebook,
its claims JSON and its PNG figures moved into reports/<profile>/. A failed
notebook leaves the previous report in place, is kept under build/failed/ for
inspection, and makes the command exit non-zero, naming the notebook and the
cell.
"""

from __future__ import annotations

import argparse

from replication import profiles
from replication.reproduce import REPO, REPORTS_DIR, find_notebooks, reproduce


def cli_add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="cpu",
                        help="profiles/<PROFILE>.yaml: smoke, cpu (default) or paper")
    parser.add_argument("--only", nargs="+", metavar="NN",
                        help="run only these notebooks, by number (01) or name (01_architecture)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override one parameter of the profile; VALUE is YAML, e.g. -p seeds '[0, 1]'")
    parser.add_argument("--cell-timeout", type=int, default=None, metavar="SECONDS",
                        help="fail a notebook whose cell runs longer than this (default: no limit)")
    parser.add_argument("--list", action="store_true", help="list the notebooks and profiles, run nothing")
    parser.add_argument("--index-only", action="store_true", help="only regenerate reports/README.md")


def cli_main(args: argparse.Namespace) -> int:
    if args.list:
        for notebook in find_notebooks():
            print(notebook.relative_to(REPO))
        print("profiles:", ", ".join(profiles.available_profiles()))
        return 0
    if args.index_only:
        from replication import reports  # lazily: torch, matplotlib and pandas take seconds; --help stays fast

        print(f"index: {reports.write_index(REPORTS_DIR)}")
        return 0
    return reproduce(args.profile, args.only, [tuple(p) for p in args.parameter],
                     cell_timeout=args.cell_timeout, log=lambda line: print(line, flush=True))
