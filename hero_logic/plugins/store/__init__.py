"""Store plugins: where the kernel keeps workflows, plays and span events.

``lmdb`` (:class:`LmdbStore`) is durable and the default; ``memory`` (:class:`MemoryStore`) is
an in-memory fake with the same semantics. Both pass :func:`hero_logic.testing.check_store`.
"""

from ._lmdb import DEFAULT_MAP_SIZE as DEFAULT_MAP_SIZE
from ._lmdb import MAX_MAP_SIZE as MAX_MAP_SIZE
from ._lmdb import LmdbStore as LmdbStore
from ._memory import MAX_KEY_BYTES as MAX_KEY_BYTES
from ._memory import MemoryStore as MemoryStore
