"""Small blocking helpers shared by the end-to-end tests: polling, feedback, MQTT 5 properties."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import httpx
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float = 15.0, what: str = "condition",
             interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def b64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def all_outcomes(api: httpx.Client) -> list[dict[str, Any]]:
    """Every retained outcome, paging with ``after``."""
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        r = api.get("/v1/feedback", params={"after": after, "limit": 1000})
        assert r.status_code == 200, r.text
        page = r.json()
        out += page["outcomes"]
        if not page["outcomes"]:
            return out
        after = page["next"]


def outcomes_for(api: httpx.Client, ids: Iterable[str], timeout: float = 15.0,
                 kind: str | None = None) -> dict[str, dict[str, Any]]:
    """Wait until every message id has a (non-"response") outcome; return them by id.

    A command id also gets a ``kind="response"`` record when the device answers;
    that is the answer, not the message's outcome, so it is skipped.
    """
    wanted = set(ids)

    def found() -> dict[str, dict[str, Any]] | None:
        seen = {
            o["id"]: o
            for o in all_outcomes(api)
            if o["id"] in wanted and o["kind"] != "response" and (kind is None or o["kind"] == kind)
        }
        return seen if set(seen) == wanted else None

    return wait_for(found, timeout, f"outcomes of {sorted(wanted)}", 0.25)


def mailbox(api: httpx.Client, device: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/devices/{device}/mailbox")
    assert r.status_code == 200, r.text
    return list(r.json()["messages"])


def device_info(api: httpx.Client, device: str) -> dict[str, Any]:
    r = api.get(f"/v1/devices/{device}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def publish_props(**values: Any) -> Properties:
    """Paho MQTT 5 PUBLISH properties by attribute name, e.g. ``ContentType="text/plain"``."""
    props = Properties(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(props, name, value)
    return props


def user_properties(msg: Any) -> dict[str, str]:
    props = getattr(msg, "properties", None)
    return dict(getattr(props, "UserProperty", []) or [])


def read_all_telemetry(api: httpx.Client, group: str, wait: float = 0) -> list[bytes]:
    """Every record consumer group ``group`` is given, acking each batch, until one is empty."""
    out: list[bytes] = []
    while True:
        r = api.get("/v1/telemetry", params={"group": group, "max": 1000, "wait": wait})
        assert r.status_code == 200, r.text
        batch: dict[str, Any] = r.json()
        if not batch["records"]:
            return out
        out += [base64.b64decode(x["payload"]) for x in batch["records"]]
        r = api.post("/v1/telemetry/ack", json={"group": group, "ack": batch["ack"]})
        assert r.status_code == 200, r.text
