"""Executor plugins: how a flow process is spawned and supervised."""

from ._process import TAIL_BYTES as TAIL_BYTES
from ._process import ProcessExecutor as ProcessExecutor
