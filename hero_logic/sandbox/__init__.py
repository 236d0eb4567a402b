"""Sandbox tiers: how far a flow process is kept from the host and the service.

``env_scrub`` (strength 10) scrubs the environment and caps resources; ``bwrap`` (30) runs each
flow in a bubblewrap sandbox; ``nsjail`` (40) expresses the same policy as an nsjail config.
Each is an entry point of ``hero_logic.sandbox``; see ``docs/sandbox.md``.
"""

from ._bwrap import BwrapTier as BwrapTier
from ._env_scrub import DEFAULT_RLIMITS as DEFAULT_RLIMITS
from ._env_scrub import EnvScrubTier as EnvScrubTier
from ._nsjail import NsjailTier as NsjailTier
from ._nsjail import nsjail_config as nsjail_config
from ._policy import SandboxLimits as SandboxLimits
from ._policy import scrubbed_env as scrubbed_env
from ._policy import split_tier_spec as split_tier_spec
from ._seccomp import DENIED_SYSCALLS as DENIED_SYSCALLS
