"""The reports as a static web site, to open in a browser from file:// (no server, no network).

  python -m replication site                      every profile's reports into ./site/
  python -m replication site --profile cpu        only the cpu profile's report pages
  python -m replication site --out /tmp/site      somewhere else

index.html is reports/README.md, the index of claims (statuses coloured, each report
linked); <profile>/NN_topic.html is the executed notebook reports/<profile>/NN_topic.ipynb
as nbconvert renders it, figures embedded, with the notebook and its claims JSON beside it.
The claims of a profile left out with --profile stay in the index, without links.

The site is built in a partial folder and swapped in whole once every link and image of
every page is found; a folder that this command did not build is never replaced.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def cli_add_arguments(parser: argparse.ArgumentParser) -> None:
    from replication.paths import REPO

    parser.add_argument("--out", type=Path, default=REPO / "site", metavar="DIR",
                        help="the site's folder, replaced whole on each build (default: ./site in the repository)")
    parser.add_argument("--profile", nargs="+", metavar="PROFILE", dest="profiles",
                        help="only these profiles' report pages, e.g. --profile cpu smoke (default: every profile "
                             "with executed reports under reports/)")
    parser.add_argument("--reports", type=Path, default=REPO / "reports", metavar="DIR",
                        help="where the reports are read from (default: reports/ in the repository)")


def cli_main(args: argparse.Namespace) -> int:
    from replication.site import build_site

    out = build_site(args.reports, args.out, args.profiles)
    print(f"site: {out / 'index.html'}")
    return 0
