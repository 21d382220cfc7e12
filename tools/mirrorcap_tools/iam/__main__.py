import sys

from mirrorcap_tools.iam.check import main

sys.exit(main())
