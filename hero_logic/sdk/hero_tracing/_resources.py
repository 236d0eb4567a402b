"""What a flow reaches beyond its own process: packages, secrets, service sockets, the network.

* Packages: the version's environment (built by the service from the PEP 723 block of the
  source) is put on ``sys.path`` by the boot stub (``HERO_FLOW_PACKAGES``); an import that
  finds nothing gets an error saying how to declare the package.
* ``flow.secret(name)`` asks the service over the span socket (``secret_get``) for a secret the
  entry flow declared with ``@flow(secrets=[...])``; outside a play it reads the variable of
  that name from the environment, so ``python my_flow.py`` still runs.
* ``flow.service_socket(name)`` is the path, inside the sandbox, of a local service socket the
  entry flow declared with ``@flow(services=[...])`` (``HERO_FLOW_SERVICES``).
* Without ``@flow(network=True)`` (``HERO_FLOW_NETWORK=off``) the first attempt to resolve a
  name or open an internet socket fails with an error that says so and names the flag.
"""

from __future__ import annotations

import os
import sys

from . import _state
from ._spans import Failed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import ModuleType
    from typing import Any

__all__ = ["install_import_hint", "install_offline_guard", "secret", "service_socket", "use_packages"]

_secrets: dict[str, str] = {}


def secret(name: str) -> str:
    """The value of the secret ``name`` (declared in ``@flow(secrets=[...])``)."""
    if not isinstance(name, str) or not name:
        msg = f"flow.secret needs a secret name, got {name!r}"
        raise TypeError(msg)
    runtime = _state.get()
    if runtime is None:
        value = os.environ.get(name)
        if value is None:
            msg = (
                f"flow.secret({name!r}): outside a play the secret is read from the environment, "
                f"and {name} is not set: export it, or run the flow with hero_logic"
            )
            raise Failed(msg)
        return value
    known = _secrets.get(name)
    if known is not None:
        return known
    from ._emit import RequestError, ServiceLost

    try:
        answer = runtime.writer.request("secret_get", {"name": name})
    except RequestError as exc:
        msg_0 = f"flow.secret({name!r}): {exc.message}"
        raise Failed(msg_0) from None
    except ServiceLost as exc:
        msg_0 = f"flow.secret({name!r}): lost the connection to the service ({exc})"
        raise Failed(msg_0) from None
    value = answer.get("value") if isinstance(answer, dict) else None
    if not isinstance(value, str):
        msg_0 = f"flow.secret({name!r}): the service answered {type(value).__name__}, not a string"
        raise Failed(msg_0)
    _secrets[name] = value
    return value


def _declared_services() -> dict[str, str]:
    raw = os.environ.get("HERO_FLOW_SERVICES", "")
    if not raw:
        return {}
    import json

    services = json.loads(raw)
    return services if isinstance(services, dict) else {}


def service_socket(name: str) -> str:
    """The path of the service socket ``name`` (declared in ``@flow(services=[...])``)."""
    if not isinstance(name, str) or not name:
        msg = f"flow.service_socket needs a service name, got {name!r}"
        raise TypeError(msg)
    services = _declared_services()
    path = services.get(name)
    if path is None:
        declared = ", ".join(sorted(services)) or "none"
        msg = (
            f"flow.service_socket({name!r}): this flow did not declare the service {name!r} "
            f"(declared: {declared}): add it to @flow(services=[...]) on the entry flow, and "
            f"start the service with --service-socket {name}=PATH"
        )
        raise Failed(msg)
    return str(path)


def use_packages(path: str) -> None:
    """Put the version's environment on ``sys.path`` (its ``.pth`` files processed)."""
    import site

    site.addsitedir(path)


class _ImportHint:
    """The last finder on ``sys.meta_path``: reached only when no other finder found a
    top-level module, it raises the usual ModuleNotFoundError with a hint on declaring it."""

    def __init__(self, has_packages: bool) -> None:
        self.has_packages = has_packages

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> None:
        if path is not None or "." in fullname:
            return  # a submodule: the usual error says enough
        top = fullname.replace("_", "-")
        if self.has_packages:
            hint = (
                f"it is not in this version's environment: add {top!r} to the dependencies "
                "of the PEP 723 block at the top of the flow source and save a new version"
            )
        else:
            hint = (
                "this flow's version declares no dependencies, so only the standard library "
                "is importable: declare packages in a PEP 723 block at the top of the source, "
                f'e.g. "# /// script" / "# dependencies = [\\"{top}\\"]" / "# ///"'
            )
        msg = f"No module named {fullname!r}: {hint}"
        raise ModuleNotFoundError(msg, name=fullname)

    def invalidate_caches(self) -> None:
        """Nothing cached."""


def install_import_hint(has_packages: bool) -> None:
    """Append the hinting finder to ``sys.meta_path``."""
    sys.meta_path.append(_ImportHint(has_packages))


_NETWORK_EVENTS = frozenset({"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.connect", "socket.__new__"})
_INET = (2, 10)  # AF_INET, AF_INET6


class NetworkOff(OSError):
    """The flow tried to use the network without ``@flow(network=True)``."""


def _offline_hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in _NETWORK_EVENTS:
        return
    if event == "socket.__new__":
        if len(args) > 1 and args[1] in _INET:
            _refuse("open an internet socket")
        return
    if event == "socket.connect":
        sock = args[0] if args else None
        if getattr(sock, "family", None) in _INET:
            _refuse(f"connect to {args[1]!r}")
        return
    host = args[0] if args else None
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host in (None, "", "localhost", "127.0.0.1", "::1"):
        return
    _refuse(f"look up {host!r}")


def _refuse(what: str) -> None:
    import errno

    msg = (
        f"the network is off for this flow, so it cannot {what}: declare "
        "@flow(network=True) on the entry flow to give its plays a network of their own"
    )
    raise NetworkOff(errno.ENETUNREACH, msg)


def install_offline_guard() -> None:
    """Make the first name lookup or internet socket fail with :class:`NetworkOff`.

    An audit hook (PEP 578): a guide for honest flows that explains the failure at its
    source. It is not the boundary: the namespace tiers deny internet sockets to an offline
    flow in the kernel (seccomp, an empty network namespace).
    """
    sys.addaudithook(_offline_hook)


def prepare_process(environ: Mapping[str, str]) -> None:
    """Set up packages, the import hint and the offline guard from the ``HERO_FLOW_*`` env."""
    packages = environ.get("HERO_FLOW_PACKAGES", "")
    if packages:
        use_packages(packages)
    install_import_hint(bool(packages))
    if environ.get("HERO_FLOW_NETWORK", "") == "off":
        install_offline_guard()
