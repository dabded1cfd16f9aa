"""roost serve as a real process: addresses printed, token written, healthy, clean SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import stat
import sys
from pathlib import Path

import httpx
import pytest

from roost.sdk import Service

pytest.importorskip("roost.edge.mqtt.listener", reason="roost serve needs the MQTT edge")
pytestmark = pytest.mark.slow

STARTUP = 60.0  # generous: a slow machine must not fail this


def roost_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "roost.cli", *args]


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}


async def read_addresses(proc: asyncio.subprocess.Process) -> dict[str, str]:
    assert proc.stdout is not None
    found: dict[str, str] = {}
    while "HTTP" not in found or "MQTT" not in found:
        line = (await proc.stdout.readline()).decode()
        if not line:
            raise AssertionError("roost serve exited before printing its addresses")
        match = re.match(r"\s+(MQTT|HTTP)\s+(\S+)", line)
        if match:
            found[match[1]] = match[2]
    return found


async def test_serve_then_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = await asyncio.create_subprocess_exec(
        *roost_command("serve", "--data-dir", str(data), "--mqtt-port", "0", "--http-port", "0"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(),
    )
    try:
        addresses = await asyncio.wait_for(read_addresses(proc), STARTUP)
        assert re.fullmatch(r"mqtt://127\.0\.0\.1:\d+", addresses["MQTT"])
        token_file = data / "admin.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        async with httpx.AsyncClient(base_url=addresses["HTTP"]) as http:
            r = await http.get("/healthz")
            assert r.status_code == 200 and r.json() == {"status": "ok"}
        async with Service(addresses["HTTP"], token_file.read_text().strip()) as s:
            await s.register_device("d1")
            # a long poll in flight must not hold up the shutdown
            poll = asyncio.create_task(s.fetch_telemetry("g", wait=60))
            await asyncio.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), STARTUP)
            assert (await asyncio.wait_for(poll, STARTUP)).records == []
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.stderr is not None
    errors = (await proc.stderr.read()).decode()
    assert code == 0, errors
    assert "Traceback" not in errors


async def test_bad_settings_exit_2_in_one_line(tmp_path: Path) -> None:
    env = {**child_env(), "ROOST_MQTT_PORT": "not-a-port"}
    proc = await asyncio.create_subprocess_exec(
        *roost_command("serve", "--data-dir", str(tmp_path)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), STARTUP)
    assert proc.returncode == 2
    assert stderr.decode() == "Error: setting mqtt_port: 'not-a-port' is not a valid int\n"
