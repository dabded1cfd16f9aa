"""roost command, notify, mailbox, telemetry, feedback, token."""

from __future__ import annotations

import asyncio
import base64
import json
import time

from cli_helpers import Invoke

from roost.hub.hub import Hub
from roost.model import MessageKind, TelemetryRecord


async def answer_first_command(hub: Hub, device: str, status: int, payload: bytes) -> None:
    while True:
        commands = [m for m in await hub.messages.pending(device) if m.kind is MessageKind.COMMAND]
        if commands:
            await hub.messages.respond(device, commands[0].id, status, payload)
            return
        await asyncio.sleep(0.01)


async def test_command_answered(invoke: Invoke, hub: Hub) -> None:
    await invoke("device", "add", "d1")
    device = asyncio.create_task(answer_first_command(hub, "d1", 200, b"pong"))
    r = await invoke("command", "d1", "ping", "hello", "--wait", "30", "--ttl", "60")
    await device
    assert r.exit_code == 0, r.output
    assert r.stdout == "status: 200\npong\n"


async def test_command_json_and_stdin_payload(invoke: Invoke, hub: Hub) -> None:
    await invoke("device", "add", "d1")
    device = asyncio.create_task(answer_first_command(hub, "d1", 500, b"\xff\x00"))
    r = await invoke("command", "d1", "flash", "-", "--json", input=b"\x01\x02firmware")
    await device
    body = json.loads(r.stdout)
    assert body["status"] == 500 and base64.b64decode(body["payload"]) == b"\xff\x00"
    outcomes = await hub.feedback.read(0, 10)
    assert [o.id for o in outcomes] == [body["id"]]


async def test_command_no_wait_prints_the_id(invoke: Invoke, hub: Hub) -> None:
    await invoke("device", "add", "d1")
    r = await invoke("command", "d1", "reboot", "--no-wait")
    [queued] = await hub.messages.pending("d1")
    assert r.stdout == f"{queued.id}\n" and queued.payload == b""


async def test_command_timeout(invoke: Invoke) -> None:
    await invoke("device", "add", "d1")
    r = await invoke("command", "d1", "reboot", "--wait", "0.05")
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: device did not answer command")


async def test_notify(invoke: Invoke, hub: Hub) -> None:
    await invoke("device", "add", "d1", "-g", "fleet")
    one = (await invoke("notify", "--device", "d1", "alerts/fire", "hot", "--ttl", "60")).stdout
    group = (await invoke("notify", "--group", "fleet", "news", "x")).stdout
    everyone = (await invoke("notify", "--all", "maintenance")).stdout
    pending = {m.id: m for m in await hub.messages.pending("d1")}
    assert set(pending) == {one.strip(), group.strip(), everyone.strip()}
    assert pending[one.strip()].payload == b"hot"
    for args in [(), ("--device", "d1", "--all")]:
        r = await invoke("notify", *args, "topic")
        assert r.exit_code == 2 and "exactly one of" in r.stderr


async def test_mailbox_show_and_purge(invoke: Invoke) -> None:
    await invoke("device", "add", "d1")
    await invoke("notify", "--device", "d1", "t", "[red]not markup[/red]")
    r = await invoke("mailbox", "show", "d1")
    assert r.exit_code == 0 and "notification" in r.stdout and r.stdout.endswith("1 message(s)\n")
    [line] = (await invoke("mailbox", "show", "d1", "--json")).stdout.splitlines()
    assert base64.b64decode(json.loads(line)["payload"]) == b"[red]not markup[/red]"
    r = await invoke("mailbox", "purge", "d1")
    assert r.stdout == "Purged 1 message(s) from d1\n"
    r = await invoke("feedback", "--json")
    assert json.loads(r.stdout)["outcome"] == "purged"


async def test_telemetry(invoke: Invoke, hub: Hub) -> None:
    now = time.time()
    await hub.telemetry.ingest(
        [TelemetryRecord("d1", "temp", str(i).encode(), now) for i in range(3)]
    )
    r = await invoke("telemetry", "--group", "g", "--max", "1")
    assert r.exit_code == 0, r.output
    [line] = r.stdout.splitlines()
    seq, _, device, path, payload = line.split("  ")
    assert (device, path, payload) == ("d1", "temp", "0")
    r = await invoke("telemetry", "--group", "g", "--json")
    records = [json.loads(x) for x in r.stdout.splitlines()]
    assert [base64.b64decode(x["payload"]) for x in records] == [b"1", b"2"]
    assert records[0]["seq"] > int(seq)
    # every printed batch was acked: nothing comes back
    await asyncio.sleep(hub.settings.telemetry_ack_timeout)
    assert (await invoke("telemetry", "--group", "g")).stdout == ""
    r = await invoke("telemetry", "--group", "late", "--from", "latest")
    assert r.stdout == ""


async def test_feedback(invoke: Invoke, hub: Hub) -> None:
    c1, c2 = hub.messages.new_command_id("d1"), hub.messages.new_command_id("d1")
    await hub.messages.respond("d1", c1, 200, b"ok")
    await hub.messages.respond("d1", c2, 404, b"")
    r = await invoke("feedback")
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[2:] == ["delivered", "response", c1, "d1", "status=200"]
    first_seq = lines[0].split()[0]
    r = await invoke("feedback", "--after", first_seq, "--json")
    [outcome] = [json.loads(x) for x in r.stdout.splitlines()]
    assert outcome["id"] == c2 and outcome["status"] == 404


async def test_tokens(invoke: Invoke) -> None:
    r = await invoke("token", "create", "--scope", "telemetry", "-d", "dashboard", "--json")
    created = json.loads(r.stdout)
    assert created["scopes"] == ["telemetry"] and created["token"]
    r = await invoke("token", "list", "--json")
    listed = {json.loads(x)["id"]: json.loads(x) for x in r.stdout.splitlines()}
    assert listed[created["id"]]["description"] == "dashboard"
    assert "dashboard" in (await invoke("token", "list")).stdout
    narrow = await invoke("device", "list", "--token", created["token"], token=False)
    assert narrow.exit_code == 1 and "scope" in narrow.stderr
    assert (await invoke("token", "revoke", created["id"])).stdout == f"Revoked {created['id']}\n"
    r = await invoke("token", "create", "--scope", "root")
    assert r.exit_code == 2
