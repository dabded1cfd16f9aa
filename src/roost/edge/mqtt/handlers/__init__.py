"""One handler module per packet family, behind the dispatcher in ``protocol.py``."""

from roost.edge.mqtt.handlers.connect import connect
from roost.edge.mqtt.handlers.other import other
from roost.edge.mqtt.handlers.publish import publishes
from roost.edge.mqtt.handlers.subscribe import subscribe, unsubscribe

__all__ = ["connect", "other", "publishes", "subscribe", "unsubscribe"]
