"""The command-line interface: ``hero_logic`` and ``hero_logic_server``."""

from ._main import build_parser as build_parser
from ._main import main as main
from ._main import server_main as server_main
