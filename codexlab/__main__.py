"""``python -m codexlab`` is the same as the ``codexlab`` command."""

import sys

from codexlab.cli import main

sys.exit(main())
