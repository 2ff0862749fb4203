"""``python -m mmtutorial.experiments``: see :mod:`mmtutorial.experiments`."""

import sys

from .commands import main

sys.exit(main())
