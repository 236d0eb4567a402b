"""Test helpers for plugin authors: conformance kits every implementation of a slot must pass."""

from ._store_kit import STORE_CHECKS as STORE_CHECKS
from ._store_kit import check_store as check_store
