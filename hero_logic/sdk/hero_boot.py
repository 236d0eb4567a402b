"""Boot stub of a flow process: ``python -I -S hero_boot.py`` runs the flow named by ``HERO_FLOW_*``.

It puts its own directory (the one holding the ``hero_tracing`` package) first on
``sys.path``, since isolated mode adds nothing there, then hands over to the SDK.
"""

import sys

sys.path.insert(0, __file__.rpartition("/")[0] or ".")

TYPE_CHECKING = False
if TYPE_CHECKING:  # type checkers see the package through its place in the source tree
    from hero_logic.sdk.hero_tracing._boot import main
else:
    from hero_tracing._boot import main

main()
