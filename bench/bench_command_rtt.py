"""Command round trip: latency percentiles at a fixed rate (default 1,000 commands/s).

Devices (``--devices``, connected over MQTT from a load-generator process) answer every
command the moment it arrives.

* Roost: a service sends ``POST /v1/devices/{id}/commands/ping?ttl=30&wait=5`` over
  keep-alive HTTP/1.1 (``bench/httpgen.py``; ``--client httpx`` for httpx.AsyncClient) and
  the clock stops when the 200 with the device's answer arrives. In between: HTTP, the
  command stored in the device's mailbox (durable), MQTT delivery, the device's answer,
  its outcome recorded, the HTTP reply.
* Mosquitto: the "service" is an MQTT client that publishes the command (QoS 1) to
  ``devices/{id}/commands/ping/{cid}`` and waits for the device's publish on
  ``devices/{id}/responses/{cid}``: a plain request/response through the broker, nothing
  stored. Not the same work: this is the floor an MQTT-only design would pay.

Pacing is open loop: command ``i`` is due at ``start + i / rate`` whatever happened to the
others (a slow answer does not hold back the next command). Latency runs from the moment the
command is handed to the client library to the moment its answer is back. The loop's timers
tick in milliseconds, so a command may leave up to ~1 ms after it was due; that lag is
reported on its own ("pacer lag") rather than added to the server's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from common import (
    HOST,
    CpuMeter,
    Mosquitto,
    Roost,
    Row,
    Server,
    check_alive,
    check_connected,
    chosen_servers,
    cpu_text,
    machine,
    percentile,
    print_table,
    ratio_text,
    run,
    servers_arg,
)
from httpgen import HttpPool
from loadgen import Device, Fleet, Job, LoadGen, Requester, open_client, split_devices

PAYLOAD = b'{"ping": 1234567}'


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--devices", type=int, default=100, help="connected devices (default 100)")
    p.add_argument("--rate", type=float, default=1000, help="commands per second (default 1000)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds at the rate before measuring")
    p.add_argument("--procs", type=int, default=1, help="device processes (default 1)")
    p.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="HTTP client for Roost: raw (bench/httpgen.py, default) or httpx.AsyncClient "
        "(tops out near 800 requests/s here: it would measure itself)",
    )
    p.add_argument(
        "--connections",
        type=int,
        default=64,
        help="HTTP keep-alive connections at most (default 64)",
    )
    servers_arg(p)
    return p.parse_args()


Fire = Callable[[int], Awaitable[bool]]


async def open_loop(rate: float, duration: float, fire: Fire) -> dict[str, Any]:
    """Fire ``rate * duration`` calls on schedule; sorted latencies and pacer lags (s), failures."""
    n = int(rate * duration)
    latencies: list[float] = []
    lags: list[float] = []
    failures = 0

    async def one(i: int, due: float) -> None:
        nonlocal failures
        sent = time.perf_counter()
        lags.append(sent - due)
        try:
            ok = await fire(i)
        except Exception:  # noqa: BLE001 - a failed call is a figure, not a crash
            ok = False
        if ok:
            latencies.append(time.perf_counter() - sent)
        else:
            failures += 1

    tasks = []
    start = time.perf_counter() + 0.01
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0.0002:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i, due)))
    await asyncio.gather(*tasks)
    return {
        "lat": sorted(latencies),
        "lag": sorted(lags),
        "failures": failures,
        "rate": len(latencies) / duration,
    }


async def roost_caller(server: Roost, devices: list[Device], args: argparse.Namespace) -> Any:
    """``(close, fire)``: ``fire(i)`` sends command ``i`` through the HTTP API and waits."""
    urls = [f"/v1/devices/{d.id}/commands/ping?ttl=30&wait=5" for d in devices]
    auth = {"Authorization": f"Bearer {server.token}"}
    if args.client == "httpx":
        import httpx

        limits = httpx.Limits(
            max_connections=args.connections, max_keepalive_connections=args.connections
        )
        client = httpx.AsyncClient(base_url=server.url, limits=limits, timeout=10, headers=auth)

        async def fire_httpx(i: int) -> bool:
            r = await client.post(urls[i % len(urls)], content=PAYLOAD)
            return r.status_code == 200 and r.json().get("status") == 200

        return client.aclose, fire_httpx

    pool = HttpPool(server.host, server.http_port, args.connections, auth)

    async def fire(i: int) -> bool:
        status, body = await pool.request("POST", urls[i % len(urls)], PAYLOAD)
        return status == 200 and json.loads(body).get("status") == 200

    async def close() -> None:
        pool.close()

    return close, fire


async def mosquitto_caller(
    server: Mosquitto, devices: list[Device], args: argparse.Namespace
) -> Any:
    waiting: dict[bytes, asyncio.Future[None]] = {}

    def on_reply(cid: bytes) -> None:
        fut = waiting.pop(cid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    service = await open_client(
        server.host, server.mqtt_port, lambda: Requester(Device("bench-service"), 60, on_reply)
    )
    await service.subscribe("devices/+/responses/#", 1)
    topics = [f"devices/{d.id}/commands/ping/".encode() for d in devices]
    loop = asyncio.get_running_loop()

    async def fire(i: int) -> bool:
        cid = str(i).encode()
        fut = waiting[cid] = loop.create_future()
        service.request(topics[i % len(topics)] + cid, PAYLOAD, 1)  # type: ignore[attr-defined]
        try:
            await asyncio.wait_for(fut, 5)
        except TimeoutError:
            waiting.pop(cid, None)
            return False
        return True

    async def close() -> None:
        service.close()

    return close, fire


async def drive(
    server: Server, devices: list[Device], meter: CpuMeter, args: argparse.Namespace
) -> dict[str, Any]:
    if isinstance(server, Roost):
        closer, fire = await roost_caller(server, devices, args)
    else:
        closer, fire = await mosquitto_caller(server, devices, args)  # type: ignore[arg-type]
    try:
        await open_loop(args.rate, args.warmup, fire)
        meter.start()
        return await open_loop(args.rate, args.duration, fire)
    finally:
        await closer()


def measure(kind: type[Server], args: argparse.Namespace) -> dict[str, Any]:
    import uvloop

    with kind() as server:
        devices = server.devices(args.devices)
        jobs = [
            Job(HOST, server.mqtt_port, [Fleet("respond", part, qos=1)])
            for part in split_devices(devices, args.procs)
        ]
        with LoadGen(jobs) as lg:
            check_connected(server, lg.ready())
            lg.go()
            meter = CpuMeter(server=[server.pid], service=[os.getpid()], devices=lg.pids)
            result = uvloop.run(drive(server, devices, meter, args))
            result["cpu"] = meter.stop()
            result["answered"] = sum(r["final"].get("respond", 0) for r in lg.finish())
        check_alive(server)
    result["server"] = server.name
    return result


def latency_cells(r: dict[str, Any]) -> dict[str, str]:
    """The table cells of one ``drive`` result: rate, failures, latency percentiles, lag."""
    lat = r["lat"]
    ms = {p: percentile(lat, p) * 1000 for p in (50, 90, 99, 99.9)}
    return {
        "done/s": f"{r['rate']:,.0f}",
        "failed": str(r["failures"]),
        "p50 ms": f"{ms[50]:.2f}",
        "p90 ms": f"{ms[90]:.2f}",
        "p99 ms": f"{ms[99]:.2f}",
        "p99.9 ms": f"{ms[99.9]:.2f}",
        "max ms": f"{(lat[-1] if lat else 0) * 1000:.1f}",
        "pacer lag p99 ms": f"{percentile(r['lag'], 99) * 1000:.2f}",
    }


def main() -> None:
    args = parse_args()
    print(
        f"command round trip: {args.rate:,.0f}/s for {args.duration:.0f} s to {args.devices} "
        f"devices; {machine()}"
    )
    rows, p99 = [], {}
    for kind in chosen_servers(args):
        r = measure(kind, args)
        ms = {p: percentile(r["lat"], p) * 1000 for p in (50, 99)}
        p99[r["server"]] = ms[99]
        print(
            f"  {r['server']}: p50 {ms[50]:.2f} ms, p99 {ms[99]:.2f} ms ({cpu_text(r['cpu'])})",
            flush=True,
        )
        what = "HTTP command, wait=5" if r["server"] == "Roost" else "MQTT request/response"
        rows.append(
            Row(
                r["server"],
                {
                    "measured": what,
                    **latency_cells(r),
                    "server CPU": f"{r['cpu']['server']:.0%}",
                    "service CPU": f"{r['cpu']['service']:.0%}",
                    "devices CPU": f"{r['cpu']['devices']:.0%}",
                },
            )
        )
    print_table(f"Command round trip at {args.rate:,.0f}/s", rows)
    print()
    print(
        ratio_text(
            "p99 latency (lower is better)", p99.get("Roost"), p99.get("Mosquitto"), " ms", ".2f"
        ),
        "(Roost stores each command; Mosquitto only relays)",
    )


if __name__ == "__main__":
    run(main)
