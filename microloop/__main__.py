"""``python -m microloop``: the ``microloop`` command."""

import sys

from .cli import main

sys.exit(main())
