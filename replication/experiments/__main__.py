"""``python -m replication.experiments --profile cpu [--only 02 03 04 05]``: train a profile's runs."""

import sys

from replication.experiments.driver import main

sys.exit(main())
