"""Serving ASGI apps on Unix sockets and TCP with hypercorn: the listening machinery every door
shares (the JSON-RPC socket, the admin, the ingress). Our own accept loop keeps a protocol
error on one connection from ending the server; header and body deadlines and a connection
cap per listener bound what slow or many clients can hold (:class:`ServingLimits`); a socket is
created 0600 in a 0700 directory; a :class:`SendGuard` cuts off a client that stopped reading.
"""

from ._doors import ServingLimits as ServingLimits
from ._guard import SendGuard as SendGuard
from ._server import MAX_SOCKET_PATH_BYTES as MAX_SOCKET_PATH_BYTES
from ._server import parse_tcp_bind as parse_tcp_bind
from ._server import prepare_socket_path as prepare_socket_path
from ._server import serve_door as serve_door
from ._server import serve_rpc as serve_rpc
