"""Connect rate: devices per second going from TCP connect to CONNACK (authenticated on Roost).

``--devices`` devices connect, ``--concurrency`` at a time in each of ``--procs`` client
processes, as a fleet does after a gateway restart. Roost checks each device's key
(a registry lookup and a hash) and records its presence; Mosquitto admits anonymous
clients. By default every connection stays open until all are in (the server's work
grows with the number connected); ``--disconnect`` closes each right after its CONNACK.
"""

from __future__ import annotations

import argparse
from typing import Any

from common import (
    HOST,
    CpuMeter,
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
from loadgen import Fleet, Job, LoadGen, split_devices


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--devices", type=int, default=5000, help="devices that connect (default 5000)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=50,
        help="connection attempts in flight per process (default 50)",
    )
    p.add_argument("--procs", type=int, default=2, help="client processes (default 2)")
    p.add_argument("--disconnect", action="store_true", help="DISCONNECT right after CONNACK")
    servers_arg(p)
    return p.parse_args()


def measure(kind: type[Server], args: argparse.Namespace) -> dict[str, Any]:
    with kind() as server:
        devices = server.devices(args.devices)
        jobs = [
            Job(
                HOST,
                server.mqtt_port,
                [Fleet("connect", part, disconnect=args.disconnect)],
                concurrency=args.concurrency,
            )
            for part in split_devices(devices, args.procs)
        ]
        with LoadGen(jobs) as lg:
            lg.ready()
            meter = CpuMeter(server=[server.pid], loadgen=lg.pids)
            meter.start()
            lg.go()
            results = lg.done()
            cpu = meter.stop()
            check_alive(server)
        check_alive(server)
    latencies = sorted(x for r in results for x in r["latencies"])
    if not latencies:
        check_connected(server, results)
    span = max(r["t_end"] for r in results) - min(r["t0"] for r in results)
    errors = [e for r in results for e in r["errors"]]
    return {
        "server": server.name,
        "rate": len(latencies) / span,
        "lat": latencies,
        "failed": sum(r["failed"] for r in results),
        "errors": errors,
        "cpu": cpu,
        "span": span,
    }


def main() -> None:
    args = parse_args()
    mode = "disconnect after CONNACK" if args.disconnect else "connections kept"
    print(
        f"connect rate: {args.devices:,} devices, {args.concurrency} in flight x {args.procs} "
        f"process(es), {mode}; {machine()}"
    )
    rows, rate = [], {}
    for kind in chosen_servers(args):
        r = measure(kind, args)
        rate[r["server"]] = r["rate"]
        print(f"  {r['server']}: {r['rate']:,.0f} connects/s ({cpu_text(r['cpu'])})", flush=True)
        if r["errors"]:
            print(f"  {r['server']}: {r['failed']} failed, e.g. {r['errors'][0]}")
        lat = r["lat"]
        rows.append(
            Row(
                r["server"],
                {
                    "connected": f"{len(lat):,}",
                    "failed": str(r["failed"]),
                    "took": f"{r['span']:.2f} s",
                    "connects/s": f"{r['rate']:,.0f}",
                    "p50 ms": f"{percentile(lat, 50) * 1000:.1f}",
                    "p99 ms": f"{percentile(lat, 99) * 1000:.1f}",
                    "server CPU": f"{r['cpu']['server']:.0%}",
                    "loadgen CPU": f"{r['cpu']['loadgen']:.0%}",
                },
            )
        )
    print_table(f"Connect rate ({mode})", rows)
    print()
    print(ratio_text("connects per second", rate.get("Roost"), rate.get("Mosquitto"), "/s"))


if __name__ == "__main__":
    run(main)
