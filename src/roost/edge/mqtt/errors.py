"""The one place that turns an error into an MQTT reason code."""

from __future__ import annotations

from roost.errors import RoostError
from roost.proto.mqtt.constants import ReasonCode


def reason_for(exc: BaseException) -> int:
    """The MQTT 5 reason code for an error (``UNSPECIFIED_ERROR`` for unexpected ones)."""
    if isinstance(exc, RoostError):
        return exc.mqtt_reason
    return int(ReasonCode.UNSPECIFIED_ERROR)


KICK_REASONS = {
    "session taken over": int(ReasonCode.SESSION_TAKEN_OVER),
    "server shutting down": int(ReasonCode.SERVER_SHUTTING_DOWN),
    "keep alive timeout": int(ReasonCode.KEEP_ALIVE_TIMEOUT),
}


def kick_reason(reason: str) -> int:
    """Reason code for a server-initiated close (device disabled/removed: administrative action)."""
    return KICK_REASONS.get(reason, int(ReasonCode.ADMINISTRATIVE_ACTION))
