"""``python -m hero_logic.cli`` runs the ``hero_logic`` command."""

import sys

from hero_logic.cli import main

sys.exit(main())
