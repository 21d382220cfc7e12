"""`python -m mirrorcap_tools.e2e`: what `make e2e` runs."""

import sys

from mirrorcap_tools.e2e.cli import main

sys.exit(main())
