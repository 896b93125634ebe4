"""`python -m bgpconform.cli`: the command line without its installed script (how `lab up` starts the
process that serves the lab)."""

from __future__ import annotations

import sys

from bgpconform.cli import main

sys.exit(main())
