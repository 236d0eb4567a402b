"""Flows bundled with hero_logic and seeded into the library at start-up (see docs/library.md).

Each module is one version of a workflow, with a ``SEED`` literal naming the workflow and its
presets. They are ordinary flows: read them, run them, benchmark them, copy them.
"""
