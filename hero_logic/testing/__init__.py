"""Test helpers: conformance kits every implementation of a slot must pass, and a kernel whose
plays are run by a script instead of a process (:func:`open_fake_kernel`)."""

from ._fake_flows import FakeRun as FakeRun
from ._fake_flows import FakeTier as FakeTier
from ._fake_flows import open_fake_kernel as open_fake_kernel
from ._picker_kit import PICKER_CHECKS as PICKER_CHECKS
from ._picker_kit import check_version_picker as check_version_picker
from ._picker_kit import sample_candidates as sample_candidates
from ._sandbox_kit import SANDBOX_CHECKS as SANDBOX_CHECKS
from ._sandbox_kit import check_sandbox_tier as check_sandbox_tier
from ._store_kit import STORE_CHECKS as STORE_CHECKS
from ._store_kit import check_store as check_store
