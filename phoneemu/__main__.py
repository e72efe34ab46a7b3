"""``python -m phoneemu``."""

import sys

from phoneemu.cli import main

sys.exit(main())
