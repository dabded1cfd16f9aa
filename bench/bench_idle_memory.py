"""Memory per idle connected device: server RSS with N devices connected, minus before, over N.

Each device connects (clean session, keepalive 60 s, PINGREQ every 30 s) and subscribes to
``devices/{id}/commands/#`` at QoS 1, as a real device would, then stays idle. The server's
resident set size is read from /proc before (after a warm-up round of connections, so
one-time allocations are not charged to the devices) and again once all are connected
and the server has settled. Kernel socket buffers are not in RSS and not counted.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from common import (
    HOST,
    Row,
    Server,
    check_alive,
    check_connected,
    chosen_servers,
    machine,
    print_table,
    ratio_text,
    rss_bytes,
    run,
    servers_arg,
)
from loadgen import Device, Fleet, Job, LoadGen, split_devices

KIB = 1024


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--devices", type=int, default=10_000, help="idle connections (default 10000)")
    p.add_argument("--procs", type=int, default=2, help="client processes (default 2)")
    p.add_argument("--warmup", type=int, default=200, help="connections opened and closed first")
    p.add_argument("--settle", type=float, default=3.0, help="seconds to wait before reading RSS")
    p.add_argument("--no-subscribe", action="store_true", help="connect only, no SUBSCRIBE")
    servers_arg(p)
    return p.parse_args()


def connect_idle(server: Server, devices: list[Device], args: argparse.Namespace) -> LoadGen:
    fleet = "connect" if args.no_subscribe else "idle"
    jobs = [
        Job(HOST, server.mqtt_port, [Fleet(fleet, part, qos=1)], concurrency=100)
        for part in split_devices(devices, args.procs)
    ]
    return LoadGen(jobs)


def _ready(lg: LoadGen, connect_only: bool) -> list[dict[str, Any]]:
    """Bring every connection up; one report (``connected``, ``failed``, ``errors``) per job."""
    reports = lg.ready()
    lg.go()
    if connect_only:  # the "connect" fleet connects on go and reports when done
        reports = [{**r, "connected": len(r["latencies"])} for r in lg.done()]
    return reports


def measure(kind: type[Server], args: argparse.Namespace) -> dict[str, Any]:
    with kind() as server:
        devices = server.devices(args.devices)
        with connect_idle(server, devices[: args.warmup], args) as warm:
            check_connected(server, _ready(warm, args.no_subscribe))
        time.sleep(args.settle)
        before = rss_bytes(server.pid)
        t0 = time.monotonic()
        with connect_idle(server, devices, args) as lg:
            reports = _ready(lg, args.no_subscribe)
            took = time.monotonic() - t0
            check_connected(server, reports)
            connected = sum(r["connected"] for r in reports)
            time.sleep(args.settle)
            check_alive(server)
            after = rss_bytes(server.pid)
        check_alive(server)
    return {
        "server": server.name,
        "before": before,
        "after": after,
        "n": connected,
        "took": took,
        "per": (after - before) / max(connected, 1),
    }


def main() -> None:
    args = parse_args()
    print(f"idle memory: {args.devices:,} devices, {args.procs} client processes; {machine()}")
    rows, per = [], {}
    for kind in chosen_servers(args):
        r = measure(kind, args)
        per[r["server"]] = r["per"]
        print(f"  {r['server']}: {r['per'] / KIB:.2f} KiB per connection", flush=True)
        rows.append(
            Row(
                r["server"],
                {
                    "connected": f"{r['n']:,}",
                    "RSS before": f"{r['before'] / KIB / KIB:.1f} MiB",
                    "RSS after": f"{r['after'] / KIB / KIB:.1f} MiB",
                    "per device": f"{r['per'] / KIB:.2f} KiB",
                    "connect time": f"{r['took']:.1f} s",
                },
            )
        )
    what = "connected" if args.no_subscribe else "connected and subscribed"
    print_table(f"Server memory per idle device ({what})", rows)
    print()
    print(
        ratio_text(
            "bytes per idle device (lower is better)", per.get("Roost"), per.get("Mosquitto"), " B"
        )
    )


if __name__ == "__main__":
    run(main)
