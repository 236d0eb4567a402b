"""The domain, between the doors and the kernel: workflows and versions, plays (the one place a
play is created), resumes, flow requests, the library (presets, search, picking), benchmarks,
seeding and the schema checker.

It imports :mod:`hero_logic.kernel` and :mod:`hero_logic.sdk`, never a door. Each room is an
object whose public coroutines marked :func:`rpc_method` are the API; :func:`open_service`
assembles them over a running kernel.
"""

from ._assembly import Service as Service
from ._assembly import open_service as open_service
from ._catalog import Library as Library
from ._checks import MAX_LIST_LIMIT as MAX_LIST_LIMIT
from ._checks import MAX_NAME_LENGTH as MAX_NAME_LENGTH
from ._checks import canonical_json as canonical_json
from ._checks import check_limit as check_limit
from ._checks import check_name as check_name
from ._checks import invalid_field as invalid_field
from ._events import Event as Event
from ._events import Events as Events
from ._flow_requests import FlowRequests as FlowRequests
from ._inputs import check_inputs as check_inputs
from ._inputs import json_type_name as json_type_name
from ._inputs import matches_type as matches_type
from ._library import LibraryService as LibraryService
from ._marker import MethodInfo as MethodInfo
from ._marker import marked_methods as marked_methods
from ._marker import method_info as method_info
from ._marker import rpc_method as rpc_method
from ._plays import Plays as Plays
from ._resumes import Resumes as Resumes
from ._schedules import Schedule as Schedule
from ._schedules import Schedules as Schedules
from ._schema_check import SchemaChecker as SchemaChecker
from ._scoring import RunOutcome as RunOutcome
from ._scoring import check_expected_output as check_expected_output
from ._scoring import merge_under as merge_under
from ._scoring import output_differences as output_differences
from ._scoring import outputs_match as outputs_match
from ._scoring import run_accuracy as run_accuracy
from ._scoring import summarise_runs as summarise_runs
from ._search import SearchDoc as SearchDoc
from ._search import rank_workflows as rank_workflows
from ._seed import SeedError as SeedError
from ._seed import read_seed as read_seed
from ._seed import seed_files as seed_files
from ._seed import seed_library as seed_library
from ._workflows import Workflows as Workflows
