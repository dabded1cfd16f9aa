"""roost device ... and how client commands find their token."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path

from cli_helpers import Invoke

from roost.hub.auth import verify_key
from roost.hub.hub import Hub


def key_of(output: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith("key: ")]
    return line.removeprefix("key: ")


async def test_add_prints_the_key(invoke: Invoke, hub: Hub) -> None:
    r = await invoke("device", "add", "truck-7", "-g", "fleet", "--meta", "vin=X1")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == "Registered truck-7"
    stored = await hub.devices.get("truck-7")
    assert verify_key(key_of(r.stdout), stored.key_hash)
    assert stored.groups == ("fleet",) and stored.metadata == {"vin": "X1"}


async def test_add_json(invoke: Invoke) -> None:
    r = await invoke("device", "add", "d1", "--json")
    body = json.loads(r.stdout)
    assert body["id"] == "d1" and body["groups"] == [] and body["key"]


async def test_api_errors_are_one_line_and_exit_1(invoke: Invoke) -> None:
    r = await invoke("device", "add", "bad id")
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: invalid device id 'bad id'")
    assert "Traceback" not in r.output
    await invoke("device", "add", "d1")
    r = await invoke("device", "add", "d1")
    assert r.exit_code == 1 and "exists" in r.stderr
    r = await invoke("device", "show", "ghost")
    assert r.exit_code == 1 and r.stderr == "Error: no device 'ghost'\n"


async def test_bad_meta_is_a_usage_error(invoke: Invoke) -> None:
    r = await invoke("device", "add", "d1", "--meta", "novalue")
    assert r.exit_code == 2 and "KEY=VALUE" in r.stderr


async def test_list(invoke: Invoke) -> None:
    for device_id, group in [("a1", "fleet"), ("b2", "other")]:
        await invoke("device", "add", device_id, "-g", group)
    r = await invoke("device", "list")
    assert r.exit_code == 0
    assert "a1" in r.stdout and "b2" in r.stdout and r.stdout.endswith("2 device(s)\n")
    r = await invoke("device", "list", "--group", "fleet", "--json")
    [line] = r.stdout.splitlines()
    assert json.loads(line)["id"] == "a1" and json.loads(line)["groups"] == ["fleet"]


async def test_show_enable_disable_rotate_remove(invoke: Invoke, hub: Hub) -> None:
    old = key_of((await invoke("device", "add", "d1", "-g", "g1")).stdout)
    r = await invoke("device", "show", "d1")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "id:        d1" and "groups:    g1" in lines
    assert "connected: no" in lines and "mailbox:   0" in lines

    assert (await invoke("device", "disable", "d1")).stdout == "Disabled d1\n"
    assert not (await hub.devices.get("d1")).enabled
    assert (await invoke("device", "enable", "d1")).stdout == "Enabled d1\n"
    assert (await hub.devices.get("d1")).enabled
    show = json.loads((await invoke("device", "show", "d1", "--json")).stdout)
    assert show["enabled"] is True and show["groups"] == ["g1"]

    new = key_of((await invoke("device", "rotate-key", "d1")).stdout)
    stored = await hub.devices.get("d1")
    assert verify_key(new, stored.key_hash) and not verify_key(old, stored.key_hash)

    assert (await invoke("device", "remove", "d1")).stdout == "Removed d1\n"
    assert (await invoke("device", "remove", "d1")).exit_code == 1


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("id,groups\n" + "".join(f"{row}\n" for row in rows))
    return path


async def test_import_in_chunks(invoke: Invoke, hub: Hub, tmp_path: Path) -> None:
    await invoke("device", "add", "dev-3")
    source = write_csv(tmp_path / "devices.csv", [f"dev-{i},fleet;g{i % 2}" for i in range(10)])
    keys_out = tmp_path / "keys.csv"
    r = await invoke("device", "import", str(source), "--keys-out", str(keys_out), "--chunk", "4")
    assert r.exit_code == 0, r.output
    assert "Imported 9 device(s), skipped 1 existing; keys written to" in r.stdout
    assert stat.S_IMODE(keys_out.stat().st_mode) == 0o600
    with keys_out.open() as f:
        keys = {row["id"]: row["key"] for row in csv.DictReader(f)}
    assert set(keys) == {f"dev-{i}" for i in range(10)} - {"dev-3"}
    stored = await hub.devices.get("dev-7")
    assert verify_key(keys["dev-7"], stored.key_hash) and stored.groups == ("fleet", "g1")


async def test_import_keys_to_stdout(invoke: Invoke, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "devices.csv", ["x1,", "x2,"])
    r = await invoke("device", "import", str(source))
    assert r.exit_code == 0
    rows = list(csv.reader(r.stdout.splitlines()))
    assert rows[0] == ["id", "key"] and [row[0] for row in rows[1:]] == ["x1", "x2"]
    assert "Imported 2 device(s)" in r.stderr


async def test_import_stops_at_a_bad_chunk_but_keeps_keys(
    invoke: Invoke, hub: Hub, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "devices.csv", ["ok-1,", "ok-2,", "bad id,", "ok-3,"])
    keys_out = tmp_path / "keys.csv"
    r = await invoke("device", "import", str(source), "--keys-out", str(keys_out), "--chunk", "2")
    assert r.exit_code == 1
    assert "stopped after 2 of 4 rows" in r.stderr and "bad id" in r.stderr
    assert [row[0] for row in csv.reader(keys_out.read_text().splitlines())] == [
        "id",
        "ok-1",
        "ok-2",
    ]
    assert [d.device.id for d in await hub.devices.list()] == ["ok-1", "ok-2"]


async def test_import_needs_a_header(invoke: Invoke, tmp_path: Path) -> None:
    source = tmp_path / "devices.csv"
    source.write_text("d1,fleet\n")
    r = await invoke("device", "import", str(source))
    assert r.exit_code == 1 and "header" in r.stderr


async def test_token_from_the_data_dir(invoke: Invoke, admin_token: str, tmp_path: Path) -> None:
    r = await invoke("device", "list", "--data-dir", str(tmp_path / "nowhere"), token=False)
    assert r.exit_code == 2 and "no API token" in r.stderr
    data = tmp_path / "node-data"
    data.mkdir()
    (data / "admin.token").write_text(admin_token + "\n")
    r = await invoke("device", "list", "--data-dir", str(data), token=False)
    assert r.exit_code == 0, r.output
    r = await invoke("device", "list", "--token", "wrong", token=False)
    assert r.exit_code == 1 and r.stderr == "Error: invalid token\n"
