"""Independent clients: Eclipse Mosquitto's ``mosquitto_pub`` and ``mosquitto_sub``
(libmosquitto, C) as devices, over MQTT 3.1.1 and 5."""

from __future__ import annotations

import base64
import shutil
import subprocess
import threading
from collections.abc import Callable

import httpx
import pytest

from roost.testing.thread import NodeThread

PUB = shutil.which("mosquitto_pub")
SUB = shutil.which("mosquitto_sub")
pytestmark = pytest.mark.skipif(
    PUB is None or SUB is None,
    reason="mosquitto_pub/mosquitto_sub not installed (Debian: apt-get install mosquitto-clients)",
)
PROTOCOL = {4: "mqttv311", 5: "mqttv5"}


def auth(node: NodeThread, device: str, key: str, version: int) -> list[str]:
    return ["-h", "127.0.0.1", "-p", str(node.mqtt_port), "-i", device, "-u", device,
            "-P", key, "-V", PROTOCOL[version]]


def run(args: list[str], timeout: float = 20) -> str:
    done = subprocess.run(args, capture_output=True, timeout=timeout, text=True)
    assert done.returncode == 0, f"{args[0]} exited {done.returncode}: {done.stderr}"
    return done.stdout


def test_mosquitto_pub_sends_telemetry(
    node: NodeThread, api: httpx.Client, register: Callable[..., str], version: int
) -> None:
    key = register("mosq-1")
    assert PUB is not None
    extra = ["-D", "publish", "content-type", "text/csv"] if version == 5 else []
    run([PUB, *auth(node, "mosq-1", key, version), "-q", "1",
         "-t", "devices/mosq-1/telemetry/csv", "-m", "1,2,3", *extra])
    run([PUB, *auth(node, "mosq-1", key, version), "-q", "0",
         "-t", "devices/mosq-1/telemetry", "-m", "qos0"])
    records = api.get("/v1/telemetry", params={"group": "g", "wait": 5}).json()["records"]
    got = [(r["path"], base64.b64decode(r["payload"]), r["content_type"]) for r in records]
    assert got[0] == ("csv", b"1,2,3", "text/csv" if version == 5 else None)
    if len(got) == 1:  # the QoS 0 record may land a moment later
        records = api.get("/v1/telemetry", params={"group": "g", "wait": 5}).json()["records"]
        got += [(r["path"], base64.b64decode(r["payload"]), r["content_type"]) for r in records]
    assert got[1] == ("", b"qos0", None)


def test_mosquitto_pub_is_refused_with_a_wrong_key(
    node: NodeThread, register: Callable[..., str], version: int
) -> None:
    register("mosq-2")
    assert PUB is not None
    done = subprocess.run(
        [PUB, *auth(node, "mosq-2", "not-the-key-at-all", version), "-q", "1",
         "-t", "devices/mosq-2/telemetry", "-m", "x"],
        capture_output=True, timeout=20, text=True,
    )
    assert done.returncode != 0
    assert "not authori" in done.stderr.lower(), done.stderr


def test_mosquitto_sub_receives_a_command_and_mosquitto_pub_answers(
    node: NodeThread, api: httpx.Client, register: Callable[..., str], version: int
) -> None:
    key = register("mosq-3")
    assert PUB is not None and SUB is not None
    result: dict[str, httpx.Response] = {}

    def send() -> None:
        result["r"] = api.post("/v1/devices/mosq-3/commands/reboot?ttl=60&wait=15",
                               content=b"now", headers={"Content-Type": "text/plain"})

    sender = threading.Thread(target=send, daemon=True)
    sender.start()  # queued in the mailbox if mosquitto_sub is not there yet
    fmt = "%t|%p|%R|%C" if version == 5 else "%t|%p"
    line = run([SUB, *auth(node, "mosq-3", key, version), "-q", "1",
                "-t", "devices/mosq-3/commands/#", "-C", "1", "-W", "15", "-F", fmt])
    fields = line.strip().split("|")
    topic, payload = fields[0], fields[1]
    cid = topic.rsplit("/", 1)[1]
    assert topic == f"devices/mosq-3/commands/reboot/{cid}" and payload == "now"
    if version == 5:
        assert fields[2:] == [f"devices/mosq-3/responses/{cid}", "text/plain"]
        answer = ["-t", f"devices/mosq-3/responses/{cid}", "-D", "publish", "user-property",
                  "status", "202"]
    else:
        answer = ["-t", f"devices/mosq-3/responses/{cid}/202"]
    run([PUB, *auth(node, "mosq-3", key, version), "-q", "1", "-m", "rebooting", *answer])
    sender.join(20)
    r = result["r"]
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["status"]) == (cid, 202)
    assert base64.b64decode(r.json()["payload"]) == b"rebooting"
