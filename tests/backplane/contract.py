"""The backplane contract: every rule of ``roost.backplane.base``, as tests.

Run it against a backplane by subclassing ``BackplaneContract`` in a test module
and providing a fixture named ``backplane`` that yields a started, empty
backplane (one per test). The tests use the public interface only, pass ``now``
explicitly, sleep only where the rule is about real time (once, ~1 s), and wait
briefly for signals so that a cluster backplane can deliver them across nodes.
"""

from __future__ import annotations

from .contract_flows import FlowContract
from .contract_mailbox import MailboxContract
from .contract_registry import RegistryContract
from .contract_telemetry import TelemetryContract


class BackplaneContract(RegistryContract, MailboxContract, TelemetryContract, FlowContract):
    """All contract tests; subclass as ``Test<Name>Contract`` with a ``backplane`` fixture."""
