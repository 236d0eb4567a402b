"""Plugins: executor, span listener and stores, each found through entry points."""
