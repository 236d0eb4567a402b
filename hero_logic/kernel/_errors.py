"""The error hierarchy of hero_logic, each class with a stable JSON-RPC code.

Every error a client can see derives from :class:`HeroLogicError`. Its ``code`` is part of the
external contract (CONTRACT.md §3) and never changes once released; ``data`` carries structured
detail (for -32602 the list of bad fields).

::

    HeroLogicError                      (-32603 internal, the base: "it broke under you")
    ├── InvalidParams                   -32602  a parameter is missing, unknown or mistyped
    │   └── InvalidFlowSource           -32602  a flow source has no @flow or does not parse
    ├── NotFound                        -32001  no record with that sid
    ├── WrongState                      -32002  the record exists but is in the wrong state
    ├── Conflict                        -32003  the request contradicts what is already stored
    ├── SandboxUnavailable              -32004  the configured sandbox tier cannot work here
    ├── StorageFull                     -32005  the store refused a write (disk or map full)
    ├── PluginNotFound                  -32007  no plugin of that name in an entry-point group
    ├── ConfigError                     -32008  a setting has a bad value
    ├── ServiceClosed                   -32009  the service is shutting down ("you closed it")
    └── ServiceBusy                     -32010  a limit of the service is reached: retry later

Protocol-level codes (-32700 parse error, -32600 invalid request, -32601 method not found)
belong to the JSON-RPC framing in :mod:`hero_logic.rpc` and are not exceptions here.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ConfigError",
    "Conflict",
    "HeroLogicError",
    "InvalidFlowSource",
    "InvalidParams",
    "NotFound",
    "PluginNotFound",
    "SandboxUnavailable",
    "ServiceClosed",
    "StorageFull",
    "WrongState",
]


class HeroLogicError(Exception):
    """Base of every hero_logic error; ``code`` is its stable JSON-RPC error code."""

    code: ClassVar[int] = -32603

    def __init__(self, message: str, *, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` object for this error."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


class InvalidParams(HeroLogicError):
    """A parameter is missing, unknown or of the wrong type.

    ``data`` is a list of ``{"field": <path>, "error": <why>}`` objects, one per bad field.
    """

    code = -32602

    def __init__(self, message: str, *, data: Any = None) -> None:
        super().__init__(message, data=data)

    @classmethod
    def fields(cls, problems: list[dict[str, str]], *, context: str = "") -> InvalidParams:
        """Build one error naming every bad field of ``problems``."""
        listed = "; ".join(f"{p['field']}: {p['error']}" for p in problems)
        prefix = f"{context}: " if context else ""
        return cls(f"{prefix}invalid params: {listed}", data=problems)


class NotFound(HeroLogicError):
    """No record with the given sid exists."""

    code = -32001


class WrongState(HeroLogicError):
    """The record exists but its state does not allow the operation."""

    code = -32002


class Conflict(HeroLogicError):
    """The request contradicts something already stored (e.g. a second, different answer)."""

    code = -32003


class SandboxUnavailable(HeroLogicError):
    """The configured sandbox tier cannot work on this machine; it is never silently downgraded."""

    code = -32004


class StorageFull(HeroLogicError):
    """The store refused a write because the disk or the database is full."""

    code = -32005


class InvalidFlowSource(InvalidParams):
    """A flow source does not parse, or defines no ``@flow`` function (a bad param value)."""


class PluginNotFound(HeroLogicError):
    """No plugin of the requested name is installed in the entry-point group."""

    code = -32007


class ConfigError(HeroLogicError):
    """A setting (flag or environment variable) has a value that cannot be used."""

    code = -32008


class ServiceClosed(HeroLogicError):
    """The service is shutting down and takes no new work."""

    code = -32009


class ServiceBusy(HeroLogicError):
    """A limit of the service is reached (its queue of pending plays is full): retry later."""

    code = -32010
