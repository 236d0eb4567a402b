"""The web admin (``hero_logic_admin``, and inside ``hero_logic serve``).

:class:`AdminApp` is the ASGI app (pages, static files, an RPC proxy and the live stream, all
through the service's RPC socket); :func:`serve_admin` serves it on ``admin.sock`` and on
``--admin-bind``. See ``docs/admin.md``.
"""

from ._app import PROXIED_METHODS as PROXIED_METHODS
from ._app import AdminApp as AdminApp
from ._security import CsrfToken as CsrfToken
from ._serve import parse_admin_bind as parse_admin_bind
from ._serve import serve_admin as serve_admin
