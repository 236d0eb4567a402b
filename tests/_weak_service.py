"""``python -m tests._weak_service serve ...``: the CLI, with ``$HERO_SANDBOX_WEAKEN`` applied
(see tests/_sandbox_weaken.py); normal runs apply nothing."""

from __future__ import annotations

import sys

from hero_logic.cli import main

from ._sandbox_weaken import apply

if __name__ == "__main__":
    apply(setattr)
    sys.exit(main())
