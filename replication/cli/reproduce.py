"""Execute the claim notebooks into reports/<profile>/ (papermill), then rebuild the index.

  python -m replication reproduce                       every notebook, cpu profile
  python -m replication reproduce --profile smoke       the CI scale (make smoke)
  python -m replication reproduce --only 01 03          some notebooks, by number
  python -m replication reproduce -p seeds "[0, 1]"     override a parameter (YAML value)
  python -m replication reproduce --index-only          only regenerate reports/README.md
  python -m replication reproduce --store fresh --reports fresh-reports
                                                        retrain into fresh/, report into fresh-reports/cpu/

Each notebook notebooks/NN_topic.ipynb runs with the parameters of
profiles/<profile>.yaml (as `papermill -f` would pass them) on the `python3`
kernel, which must be this environment's ipykernel. It runs in a staging
folder under build/; only when every cell succeeds are the executed notebook,
its claims JSON and its PNG figures moved into reports/<profile>/. A failed
notebook leaves the previous report in place, is kept under build/failed/ for
inspection, and makes the command exit non-zero, naming the notebook and the
cell. Before each notebook it prints how long its last run took (the wall time
in the committed report's provenance), and at the end the total beside theirs.

A re-run aside, to compare with the committed reports (`make reproduce
PROFILE=cpu STORE=fresh`, then `python -m replication compare reports/cpu
fresh-reports/cpu`): --store DIR gives the notebooks DIR as their run store
and DIR/.cache as their checkpoint cache, so every run they need and DIR lacks
is trained again there (hours for the cpu profile), never read from or added
to runs/; --reports DIR publishes into DIR/<profile>/ and DIR/README.md, never
into reports/. --store alone reports into <DIR>-reports.
"""

from __future__ import annotations

import argparse

from replication import profiles
from pathlib import Path

from replication.reproduce import REPO, REPORTS_DIR, default_reports_for, find_notebooks, reproduce


def cli_add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="cpu",
                        help="profiles/<PROFILE>.yaml: smoke, cpu (default) or paper")
    parser.add_argument("--only", nargs="+", metavar="NN",
                        help="run only these notebooks, by number (01) or name (01_architecture)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override one parameter of the profile; VALUE is YAML, e.g. -p seeds '[0, 1]'")
    parser.add_argument("--cell-timeout", type=int, default=None, metavar="SECONDS",
                        help="fail a notebook whose cell runs longer than this (default: no limit)")
    parser.add_argument("--store", type=Path, metavar="DIR",
                        help="the notebooks' run store (checkpoints in DIR/.cache): runs missing there are trained "
                             "into it, runs/ is neither read nor written (default: runs/)")
    parser.add_argument("--reports", type=Path, metavar="DIR",
                        help="publish into DIR/<profile>/ and DIR/README.md instead of the committed reports/ "
                             "(default: reports/, or <STORE>-reports with --store)")
    parser.add_argument("--list", action="store_true", help="list the notebooks and profiles, run nothing")
    parser.add_argument("--index-only", action="store_true", help="only regenerate the index (reports/README.md)")


def cli_main(args: argparse.Namespace) -> int:
    if args.list:
        for notebook in find_notebooks():
            print(notebook.relative_to(REPO))
        print("profiles:", ", ".join(profiles.available_profiles()))
        return 0
    reports_dir = args.reports or (default_reports_for(args.store) if args.store else REPORTS_DIR)
    if args.index_only:
        from replication.claims.report import write_index  # lazily: jsonschema takes a second; --help stays fast

        print(f"index: {write_index(reports_dir)}")
        return 0
    return reproduce(args.profile, args.only, [tuple(p) for p in args.parameter], reports_dir=reports_dir,
                     cell_timeout=args.cell_timeout, store=args.store, log=lambda line: print(line, flush=True))
