"""``python -m seamline`` is the ``seamline`` command."""

import sys

from seamline.bots.cli import main

sys.exit(main())
