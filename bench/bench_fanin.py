"""Telemetry fan-in: many devices publishing at once; messages per second taken in.

* QoS 1 - Roost: PUBACKs per second, each sent only after the SQLite commit that stores the
  message (and the stored row count is checked against the PUBACKs afterwards). Mosquitto:
  PUBACKs per second with one subscriber on ``devices/+/telemetry`` (``persistence false``:
  acknowledged, never stored), and what that subscriber received.
* QoS 0 - what arrived: Roost's stored rows per second (counted in the SQLite file);
  Mosquitto's messages per second at the one subscriber.

Every publisher keeps ``--window`` QoS 1 messages in flight. Run ``--help`` for the knobs.
"""

from __future__ import annotations

import argparse
import time
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
    print_table,
    ratio_text,
    run,
    servers_arg,
)
from loadgen import Device, Fleet, Job, LoadGen, split_devices


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--devices", type=int, default=100, help="publishing connections (default 100)")
    p.add_argument("--window", type=int, default=64, help="QoS 1 messages in flight per connection")
    p.add_argument("--payload", type=int, default=64, help="payload bytes per message (default 64)")
    p.add_argument("--qos", default="1,0", help="QoS levels to measure (default 1,0)")
    p.add_argument(
        "--sub-qos",
        default="1,0",
        help="QoS of Mosquitto's counting subscription when publishers use QoS 1; "
        "one measurement each (default 1,0)",
    )
    p.add_argument("--procs", type=int, default=1, help="publisher processes (default 1)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    p.add_argument("--duration", type=float, default=8.0, help="seconds measured")
    servers_arg(p)
    return p.parse_args()


def _sum(results: list[dict[str, Any]], key: str, role: str) -> int:
    return sum(r[key].get(role, 0) for r in results)


def _window_rate(results: list[dict[str, Any]], role: str) -> float:
    rs = [r for r in results if role in r["c2"]]
    span = max(r["t2"] for r in rs) - min(r["t1"] for r in rs)
    return sum(r["c2"][role] - r["c1"][role] for r in rs) / span


def _settled_rows(server: Roost, timeout: float = 20.0) -> int:
    """Row count once it stops growing (QoS 0 messages still in buffers get stored)."""
    rows, deadline = server.telemetry_rows(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = server.telemetry_rows()
        if now == rows:
            break
        rows = now
    return rows


def _jobs(server: Server, qos: int, sub_qos: int, args: argparse.Namespace) -> list[Job]:
    devices = server.devices(args.devices)
    timing = {"warmup": args.warmup, "duration": args.duration}
    pub = [
        Fleet("publish", part, qos=qos, window=args.window, payload=args.payload)
        for part in split_devices(devices, args.procs)
    ]
    jobs = [Job(HOST, server.mqtt_port, [fleet], **timing) for fleet in pub]
    if isinstance(server, Mosquitto):  # the one subscriber, in a process of its own
        sub = Fleet("count", [Device("bench-sub")], topic="devices/+/telemetry", qos=sub_qos)
        jobs.append(Job(HOST, server.mqtt_port, [sub], **timing))
    return jobs


def _drive(server: Server, jobs: list[Job], args: argparse.Namespace) -> dict[str, Any]:
    """Run the jobs; worker counts, CPU, and (Roost) rows stored in the measured window."""
    rows = server.telemetry_rows if isinstance(server, Roost) else lambda: 0
    with LoadGen(jobs) as lg:
        check_connected(server, lg.ready())
        cpu = CpuMeter(server=[server.pid], loadgen=lg.pids)
        lg.go()
        time.sleep(args.warmup)
        cpu.start()
        t1, rows1 = time.monotonic(), rows()
        time.sleep(args.duration)
        t2, rows2 = time.monotonic(), rows()
        load = cpu.stop()
        results = lg.done()
        # count while the connections are still open: the server may still be storing
        stored = _settled_rows(server) if isinstance(server, Roost) else 0
    check_alive(server)
    return {
        "results": results,
        "cpu": load,
        "row_rate": (rows2 - rows1) / (t2 - t1),
        "stored": stored,
    }


def _figures(server: Server, qos: int, sub_qos: int, run: dict[str, Any]) -> dict[str, Any]:
    results, stored = run["results"], run["stored"]
    sent = _sum(results, "final", "publish")
    if isinstance(server, Roost) and qos == 1:
        rate = _window_rate(results, "publish")
        note = f"{stored:,} rows stored >= {sent:,} PUBACKed: {stored >= sent}"
    elif isinstance(server, Roost):
        rate = run["row_rate"]
        note = f"{stored:,} of {sent:,} sent were stored"
    elif qos == 1:
        rate = _window_rate(results, "publish")
        note = f"QoS {sub_qos} subscriber received {_window_rate(results, 'count'):,.0f}/s"
    else:
        rate = _window_rate(results, "count")
        note = f"{_sum(results, 'final', 'count'):,} of {sent:,} sent reached the subscriber"
    closed = sum(r["closed_early"] for r in results)
    if closed:
        note += f"; {closed} connections closed by the server"
    return {
        "server": server.name,
        "qos": qos,
        "sub_qos": sub_qos,
        "cpu": run["cpu"],
        "rate": rate,
        "note": note,
    }


def measure(kind: type[Server], qos: int, sub_qos: int, args: argparse.Namespace) -> dict[str, Any]:
    with kind() as server:
        run = _drive(server, _jobs(server, qos, sub_qos, args), args)
        return _figures(server, qos, sub_qos, run)


def main() -> None:
    args = parse_args()
    print(
        f"fan-in: {args.devices} devices, window {args.window}, {args.payload}-byte payloads, "
        f"{args.procs} publisher process(es), {args.duration:.0f} s measured; {machine()}"
    )
    results = []
    for qos in (int(q) for q in args.qos.split(",")):
        for kind in chosen_servers(args):
            sub_qoses = (
                [int(q) for q in args.sub_qos.split(",")] if qos and kind is Mosquitto else [0]
            )
            for sub_qos in sub_qoses:
                r = measure(kind, qos, sub_qos, args)
                print(
                    f"  {r['server']} QoS {qos}: {r['rate']:,.0f} msg/s ({cpu_text(r['cpu'])}); "
                    f"{r['note']}",
                    flush=True,
                )
                results.append(r)
    rows = []
    for r in results:
        what = (
            ("PUBACKed, durable" if r["server"] == "Roost" else "PUBACKed, not stored")
            if r["qos"] == 1
            else ("stored" if r["server"] == "Roost" else "delivered")
        )
        figures = {
            "QoS": str(r["qos"]),
            "msg/s": f"{r['rate']:,.0f}",
            "counted": what,
            "server CPU": f"{r['cpu']['server']:.0%}",
            "loadgen CPU": f"{r['cpu']['loadgen']:.0%}",
            "notes": r["note"],
        }
        rows.append(Row(r["server"], figures))
    print_table("Telemetry fan-in", rows)
    rate = {(r["server"], r["qos"], r["sub_qos"]): r["rate"] for r in results}
    print()
    for sub_qos in (1, 0):
        print(
            ratio_text(
                f"QoS 1, Roost durable vs Mosquitto non-durable with a QoS {sub_qos} subscriber",
                rate.get(("Roost", 1, 0)),
                rate.get(("Mosquitto", 1, sub_qos)),
                " msg/s",
            )
        )
    print(
        ratio_text(
            "QoS 0, Roost stored vs Mosquitto delivered",
            rate.get(("Roost", 0, 0)),
            rate.get(("Mosquitto", 0, 0)),
            " msg/s",
        )
    )


if __name__ == "__main__":
    run(main)
