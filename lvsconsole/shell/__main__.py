"""``python -m lvsconsole.shell`` = ``lvsconsole shell``."""

import sys

from lvsconsole.shell.cli import main

sys.exit(main())
