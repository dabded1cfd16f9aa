"""The embedded backplane (default): one SQLite file in WAL mode, group commit.

Modules: ``schema`` (tables, migrations), ``writer`` (the database thread),
``bulk`` (multi-row inserts), one module per resource (``registry``,
``mailbox``, ``telemetry``, ``inquiries``, ``feedback``, ``sessions``) and
``backplane`` (the class that ties them together).
"""

from roost.backplane.sqlite.backplane import SqliteBackplane

__all__ = ["SqliteBackplane"]
