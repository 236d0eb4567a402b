"""Span listener plugins: how a flow's span events reach the kernel."""

from ._unix import MAX_LINE_BYTES as MAX_LINE_BYTES
from ._unix import ListenerHandle as ListenerHandle
from ._unix import UnixSpanListener as UnixSpanListener
