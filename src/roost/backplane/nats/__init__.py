"""The cluster backplane on NATS JetStream (``roost serve --nats URL,...``).

The only package of Roost that imports ``nats``. Modules: ``names`` (subject,
stream and bucket names), ``context`` (the shared state and raw JetStream
requests), ``codec`` (JSON forms), ``signals`` (cross-node signals), one module
per resource, and ``backplane`` (the class that ties them together).
"""

from roost.backplane.nats.backplane import NatsBackplane
from roost.backplane.nats.context import NatsOptions

__all__ = ["NatsBackplane", "NatsOptions"]
