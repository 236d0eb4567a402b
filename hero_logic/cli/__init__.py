"""The command-line interface: ``hero_logic``, ``hero_logic_server`` and ``hero_logic_admin``."""

from ._main import admin_main as admin_main
from ._main import build_parser as build_parser
from ._main import main as main
from ._main import server_main as server_main
