"""`python -m pullthrough.cli`: the same as the `pullthrough` console script."""

import sys

from pullthrough.cli import main

sys.exit(main())
