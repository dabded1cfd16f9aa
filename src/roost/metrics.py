"""The node's Prometheus registry and the metrics the device side keeps.

One registry per process, scraped at ``GET /metrics``. Counters on hot paths
are bumped once per batch, never once per message.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, PlatformCollector, ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

DEVICES_CONNECTED = Gauge(
    "roost_devices_connected", "Devices connected to this node.", registry=REGISTRY
)
CONNECTIONS = Gauge(
    "roost_connections",
    "Open device connections on this node, by protocol.",
    ["protocol"],
    registry=REGISTRY,
)
TELEMETRY_RECORDS = Counter(
    "roost_telemetry_records", "Telemetry records durably stored.", registry=REGISTRY
)
MAILBOX_DELIVERED = Counter(
    "roost_mailbox_delivered",
    "Mailbox and group messages acknowledged by devices (or sent at QoS 0).",
    registry=REGISTRY,
)
REFUSED = Counter(
    "roost_device_refusals",
    "Device requests refused: connect (bad credentials), subscribe, publish (outside its topics).",
    ["what"],
    registry=REGISTRY,
)


def track_connections(devices: Callable[[], int], mqtt: Callable[[], int]) -> None:
    """Gauges read at scrape time, so connecting costs nothing extra."""
    DEVICES_CONNECTED.set_function(devices)
    CONNECTIONS.labels("mqtt").set_function(mqtt)
