"""Fixtures for running Roost in tests (yours and ours): a node on free ports."""

from roost.testing.node import running_node

__all__ = ["running_node"]
