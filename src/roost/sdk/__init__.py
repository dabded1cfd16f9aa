"""The Python SDK: ``Service`` for back-end applications, ``Device`` to play a device.

from roost.sdk import Service

async with Service("http://127.0.0.1:8080", token) as s:
    response = await s.command("truck-7", "unlock", b"...", ttl=30, wait=10)
"""

from roost.sdk.client import Service
from roost.sdk.device import Device
from roost.sdk.types import (
    CommandResponse,
    DeviceInfo,
    DevicePage,
    FeedbackPage,
    ImportResult,
    Inquiry,
    NewToken,
    Outcome,
    QueuedMessage,
    Record,
    TelemetryBatch,
    TokenInfo,
)

__all__ = [
    "CommandResponse",
    "Device",
    "DeviceInfo",
    "DevicePage",
    "FeedbackPage",
    "ImportResult",
    "Inquiry",
    "NewToken",
    "Outcome",
    "QueuedMessage",
    "Record",
    "Service",
    "TelemetryBatch",
    "TokenInfo",
]
