"""Sandbox tiers: how far a flow process is kept from the host and the service."""

from ._env_scrub import DEFAULT_RLIMITS as DEFAULT_RLIMITS
from ._env_scrub import EnvScrubTier as EnvScrubTier
from ._env_scrub import scrubbed_env as scrubbed_env
