"""hero_logic: a runtime for runnable, observable, resumable Python flows, on Trio.

The sub-packages: :mod:`hero_logic.kernel` (the Trio kernel, model, config, errors),
:mod:`hero_logic.plugins` (executor, span listener, stores), :mod:`hero_logic.sandbox`
(sandbox tiers), :mod:`hero_logic.sdk` (the ``hero_tracing`` authoring SDK),
:mod:`hero_logic.rpc` (JSON-RPC server and client) and :mod:`hero_logic.admin`.
"""

__version__ = "0.1.0"
