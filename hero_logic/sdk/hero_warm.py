"""Warm stub of a flow process: ``python -I -S hero_warm.py`` waits, inside its sandbox and with
the SDK imported, for the one play it will run (see ``hero_tracing._warm``).

Like ``hero_boot.py`` it puts its own directory first on ``sys.path``, then hands over.
"""

import sys

sys.path.insert(0, __file__.rpartition("/")[0] or ".")

TYPE_CHECKING = False
if TYPE_CHECKING:  # type checkers see the package through its place in the source tree
    from hero_logic.sdk.hero_tracing._warm import main
else:
    from hero_tracing._warm import main

main()
