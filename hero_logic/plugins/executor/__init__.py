"""Executor plugins: how a flow process is spawned and supervised."""

from ._process import TAIL_BYTES as TAIL_BYTES
from ._process import ProcessExecutor as ProcessExecutor
from ._process import kill_recorded_process as kill_recorded_process
from ._process import process_start_time as process_start_time
