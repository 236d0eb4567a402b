"""The service: every room of the domain over one running kernel, assembled once.

:func:`open_service` builds the rooms, tells the kernel who answers flows' requests, seeds the
bundled flows, drives on the benchmarks a previous run left, and closes what it opened (the
schema checker's worker) on exit. Doors (RPC, admin, ingress) call the rooms' marked methods;
:meth:`Service.api` lists the objects that carry them.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs

from hero_logic.kernel import now_ms

from ._environments import Environments
from ._events import Events
from ._flow_requests import FlowRequests
from ._library import LibraryService
from ._plays import Plays
from ._resume_links import ResumeLinks
from ._resumes import Resumes
from ._retention import Retention
from ._runs import RunPreparation
from ._schedules import Schedules
from ._schema_check import SchemaChecker
from ._secrets import Secrets
from ._seed import seed_library
from ._webhooks import Webhooks
from ._workflows import Workflows

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from hero_logic.kernel import Kernel

__all__ = ["Service", "open_service"]


@attrs.define(eq=False)
class Service:
    """The domain rooms over one kernel."""

    kernel: Kernel
    schema_checker: SchemaChecker
    workflows: Workflows
    plays: Plays
    resumes: Resumes
    library: LibraryService
    flow_requests: FlowRequests
    environments: Environments
    secrets: Secrets
    runs: RunPreparation
    resume_links: ResumeLinks
    webhooks: Webhooks
    events: Events
    schedules: Schedules
    retention: Retention

    @classmethod
    def build(cls, kernel: Kernel, *, schema_checker: SchemaChecker | None = None) -> Service:
        """Every room over ``kernel``, wired to each other (nothing started yet)."""
        checker = schema_checker or SchemaChecker()
        environments = Environments(kernel)
        secrets = Secrets(kernel)
        workflows = Workflows(kernel, environments=environments)
        links = ResumeLinks(
            kernel.config.resume_links_key_file, kernel.config.ingress_public_url, ttl_s=kernel.config.resume_url_ttl_s
        )
        plays = Plays(kernel, workflows, links=links)
        library = LibraryService(kernel, plays)
        plays.library = library
        return cls(
            kernel=kernel,
            schema_checker=checker,
            workflows=workflows,
            plays=plays,
            resumes=Resumes(kernel, checker, links=links),
            library=library,
            flow_requests=FlowRequests(kernel, workflows, plays, checker, secrets=secrets),
            environments=environments,
            secrets=secrets,
            runs=RunPreparation.build(kernel.config, environments, secrets),
            resume_links=links,
            webhooks=Webhooks(kernel, plays, secrets, kernel.config.ingress_public_url),
            events=Events(kernel),
            schedules=Schedules(kernel, plays, clock_ms=kernel.timers.clock_ms if kernel.timers is not None else now_ms),
            retention=Retention(kernel),
        )

    def api(self) -> list[object]:
        """The objects whose ``@rpc_method`` methods make up the API."""
        return [self.workflows, self.plays, self.resumes, self.library, self.secrets, self.webhooks, self.events, self.schedules, self.retention]

    @staticmethod
    def api_classes() -> tuple[type, ...]:
        """The classes of :meth:`api`'s objects (their marks can be read without a kernel)."""
        return (Workflows, Plays, Resumes, LibraryService, Secrets, Webhooks, Events, Schedules, Retention)


@asynccontextmanager
async def open_service(kernel: Kernel, *, seed: bool = True) -> AsyncIterator[Service]:
    """A started service over ``kernel``: it answers flows' requests, delivers events to the
    plays that wait for them (and expires old ones), fires schedules, the bundled flows are seeded (when
    ``seed``) and unfinished benchmarks are driven on. Closed on exit."""
    service = Service.build(kernel)
    try:
        kernel.answer_requests_with(service.flow_requests)
        kernel.prepare_runs_with(service.runs)
        await service.environments.collect()
        await service.environments.resume_builds()
        kernel.wait_handler = service.events  # events reach plays that wait (and their mailbox)
        kernel.start_system_task(service.events.sweep, name="event retention sweep")
        kernel.start_system_task(service.schedules.run, name="scheduler")
        service.webhooks.events = service.events  # a webhook may send events
        if seed:
            await seed_library(service.workflows)
        await service.library.resume_benchmarks()
        if kernel.config.retention_days:
            kernel.start_system_task(service.retention.run, name="play retention sweep")
        yield service
    finally:
        await service.schema_checker.aclose()
