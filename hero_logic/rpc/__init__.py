"""JSON-RPC 2.0 over HTTP/1.1 over the Unix socket ``rpc.sock`` (CONTRACT.md §3).

The pieces: :func:`rpc_method` marks the coroutines of a service class and
:class:`MethodTable` reads their signatures; :func:`handle_body` is the sans-IO framing;
:class:`RpcApp` the raw ASGI app; :func:`serve_rpc` serves it with hypercorn on the socket;
:class:`Client` and :class:`AsyncClient` call it. :func:`openrpc_document` describes a table.
:func:`stream_routes` adds the live span stream's websockets (CONTRACT.md §7) and
:func:`open_stream` reads them.
"""

from hero_logic.serving import SendGuard as SendGuard
from hero_logic.serving import ServingLimits as ServingLimits
from hero_logic.serving import parse_tcp_bind as parse_tcp_bind
from hero_logic.serving import serve_door as serve_door
from hero_logic.serving import serve_rpc as serve_rpc

from ._asgi import RpcApp as RpcApp
from ._asgi import WebsocketHandler as WebsocketHandler
from ._client import AsyncClient as AsyncClient
from ._client import Client as Client
from ._client import RemoteConfigError as RemoteConfigError
from ._client import RemoteConflict as RemoteConflict
from ._client import RemoteInvalidParams as RemoteInvalidParams
from ._client import RemoteInvalidRequest as RemoteInvalidRequest
from ._client import RemoteMethodNotFound as RemoteMethodNotFound
from ._client import RemoteNotFound as RemoteNotFound
from ._client import RemoteParseError as RemoteParseError
from ._client import RemotePluginNotFound as RemotePluginNotFound
from ._client import RemoteSandboxUnavailable as RemoteSandboxUnavailable
from ._client import RemoteServiceBusy as RemoteServiceBusy
from ._client import RemoteServiceClosed as RemoteServiceClosed
from ._client import RemoteStorageFull as RemoteStorageFull
from ._client import RemoteWrongState as RemoteWrongState
from ._client import RpcError as RpcError
from ._client import ServiceUnavailable as ServiceUnavailable
from ._client import error_from_json as error_from_json
from ._jsonrpc import MAX_DEPTH as MAX_DEPTH
from ._jsonrpc import InvalidRequest as InvalidRequest
from ._jsonrpc import MethodNotFound as MethodNotFound
from ._jsonrpc import ParseError as ParseError
from ._jsonrpc import answer_body as answer_body
from ._jsonrpc import handle_body as handle_body
from ._jsonrpc import loads_strict as loads_strict
from ._methods import BUILT_IN_METHODS as BUILT_IN_METHODS
from ._methods import Method as Method
from ._methods import MethodInfo as MethodInfo
from ._methods import MethodTable as MethodTable
from ._methods import Param as Param
from ._methods import admin_method_names as admin_method_names
from ._methods import rpc_method as rpc_method
from ._openrpc import openrpc_document as openrpc_document
from ._stream import CLOSE_DROPPED as CLOSE_DROPPED
from ._stream import STREAM_QUEUE_SIZE as STREAM_QUEUE_SIZE
from ._stream import stream_all_plays as stream_all_plays
from ._stream import stream_play as stream_play
from ._stream import stream_routes as stream_routes
from ._stream_client import StreamClient as StreamClient
from ._stream_client import open_stream as open_stream
