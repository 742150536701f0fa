"""Compare two sets of claims reports, claim by claim: status, measurement and 95% interval in each.

  python -m replication compare reports/cpu fresh-reports/cpu
  python -m replication compare reports/cpu fresh-reports/cpu --markdown compare.md

The check a sceptical reader runs: retrain a profile into a separate store and report folder
(`make reproduce PROFILE=cpu STORE=fresh`, or `python -m replication reproduce --store fresh
--reports fresh-reports`, with `-p seeds "[5, 6, 7]"` for other seeds), then compare its
reports with the committed ones. Each row is a claim: its status in A and in B, the measured
value with its 95% interval in each, whether the two intervals overlap (a value without an
interval counts as a point; values that are not numbers overlap when equal), and "same status"
or "differs" ("only in A/B" for a claim one side lacks). A folder is a reports folder
(reports/, holding <profile>/NN_topic.json) or one profile's folder (reports/cpu); with one
profile on each side, claims are matched by id, otherwise by profile and id.

Exit status 0 whatever the statuses; 1 when a folder is missing or holds a report that cannot
be read (the error names it).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def cli_add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", type=Path, metavar="A", help="the first reports folder, e.g. reports/cpu (the committed)")
    parser.add_argument("b", type=Path, metavar="B", help="the second, e.g. fresh-reports/cpu (the re-run)")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="also write the table as markdown to FILE (written whole, atomically)")


def cli_main(args: argparse.Namespace) -> int:
    from replication.claims.compare import compare
    from replication.paths import atomic_write_text

    comparison = compare(args.a, args.b)
    print(comparison.text(), end="")
    if args.markdown:
        print(f"markdown: {atomic_write_text(args.markdown, comparison.markdown())}")
    return 0
