"""What every benchmark shares: servers on free loopback ports, devices, CPU and memory, figures.

Both servers run as child processes with their own data/config in a temporary directory
and are stopped by PID when the benchmark ends, also on Ctrl-C or an exception.
Mosquitto runs with ``persistence false``: it is *not* durable in these comparisons.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
MOSQUITTO = os.environ.get("MOSQUITTO_BIN") or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
ROOST = os.environ.get("ROOST_BIN") or str(Path(sys.executable).with_name("roost"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit (10k connections need 10k descriptors)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {HOST}:{port} after {timeout:.0f} s")


# --- processes: CPU and memory from /proc ------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a process, all its threads included."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class CpuMeter:
    """CPU use of some processes over a wall-clock window, as a fraction of one core."""

    def __init__(self, **pids: list[int]) -> None:
        self.pids = pids
        self._start: dict[str, tuple[float, float]] = {}

    def _sample(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.pids.items()}

    def start(self) -> None:
        now = time.monotonic()
        self._start = {name: (now, cpu) for name, cpu in self._sample().items()}

    def stop(self) -> dict[str, float]:
        now, sample = time.monotonic(), self._sample()
        return {n: (sample[n] - c0) / (now - t0) for n, (t0, c0) in self._start.items()}


def cpu_text(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} CPU {frac:.0%}" for name, frac in cpu.items())


# --- servers --------------------------------------------------------------------------------


def _stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


class Server:
    """A broker child process on a free loopback port, in its own temporary directory."""

    name = "?"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-{self.name.lower()}-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.mqtt_port = 0
        self.host = HOST

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.log_path = self.dir / "server.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=raise_nofile_limit,
                start_new_session=True,  # Ctrl-C reaches us only
            )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Server:
        raise NotImplementedError

    def devices(self, n: int, prefix: str = "dev-") -> list[Any]:
        """``n`` devices that may connect, as :class:`loadgen.Device`."""
        raise NotImplementedError

    def stop(self) -> None:
        _stop_process(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Server:
        try:
            return self.start()
        except BaseException:
            if self.proc is not None:
                sys.stderr.write(f"--- {self.name} log ---\n{self.log_tail()}\n")
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Mosquitto(Server):
    name = "Mosquitto"

    def start(self) -> Mosquitto:
        self.mqtt_port = free_port()
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.mqtt_port} {HOST}\n"
            "allow_anonymous true\n"
            "persistence false\n"  # NOT durable: nothing is written to disk
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
            "connection_messages false\n"
            "max_connections -1\n"
            "set_tcp_nodelay true\n"  # as Roost (asyncio) does: no Nagle delay on replies
        )
        self._spawn([MOSQUITTO, "-c", str(conf)])
        assert self.proc is not None
        wait_for_port(self.mqtt_port, self.proc)
        return self

    def devices(self, n: int, prefix: str = "dev-") -> list[Any]:
        from loadgen import Device

        return [Device(f"{prefix}{i}") for i in range(n)]


class Roost(Server):
    name = "Roost"

    def start(self) -> Roost:
        import httpx

        self.mqtt_port, self.http_port = free_port(), free_port()
        self.url = f"http://{HOST}:{self.http_port}"
        env = dict(os.environ, ROOST_LOG_LEVEL=os.environ.get("ROOST_LOG_LEVEL", "warning"))
        self._spawn(
            [
                ROOST,
                "serve",
                "--data-dir",
                str(self.dir / "data"),
                "--host",
                HOST,
                "--mqtt-port",
                str(self.mqtt_port),
                "--http-port",
                str(self.http_port),
            ],
            env=env,
        )
        assert self.proc is not None
        wait_for_port(self.http_port, self.proc)
        wait_for_port(self.mqtt_port, self.proc)
        deadline = time.monotonic() + 30
        while httpx.get(f"{self.url}/healthz").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("Roost /healthz did not answer 200 within 30 s")
            time.sleep(0.1)
        self.token = (self.dir / "data" / "admin.token").read_text().strip()
        return self

    @property
    def db_path(self) -> Path:
        return self.dir / "data" / "roost.db"

    def http(self, **kw: Any) -> Any:
        import httpx

        auth = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.url, headers=auth, timeout=60, **kw)

    def devices(self, n: int, prefix: str = "dev-") -> list[Any]:
        """Register ``n`` devices (bulk import, or one by one if the server has no import)."""
        from loadgen import Device

        ids = [f"{prefix}{i}" for i in range(n)]
        keys: dict[str, str] = {}
        with self.http() as client:
            for chunk in (ids[i : i + 5000] for i in range(0, n, 5000)):
                r = client.post("/v1/devices/import", json=[{"id": d} for d in chunk])
                if r.status_code in (404, 405):
                    for d in chunk:
                        one = client.post("/v1/devices", json={"id": d, "groups": []})
                        one.raise_for_status()
                        keys[d] = one.json()["key"]
                    continue
                r.raise_for_status()
                keys.update((k["id"], k["key"]) for k in r.json()["keys"])
        missing = [d for d in ids if d not in keys]
        if missing:
            raise RuntimeError(f"{len(missing)} devices were not created (e.g. {missing[0]})")
        return [Device(d, keys[d]) for d in ids]

    def telemetry_rows(self) -> int:
        """Records stored so far, from the SQLite file (WAL: readers do not block the writer)."""
        import sqlite3

        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return int(db.execute("SELECT count(*) FROM telemetry").fetchone()[0])
        finally:
            db.close()


SERVERS = {"roost": Roost, "mosquitto": Mosquitto}


def servers_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--servers",
        default="roost,mosquitto",
        help="comma-separated servers to measure, in order (default: roost,mosquitto)",
    )


def chosen_servers(args: argparse.Namespace) -> list[type[Server]]:
    return [SERVERS[s.strip()] for s in args.servers.split(",") if s.strip()]


def check_connected(server: Server, reports: list[dict[str, Any]]) -> None:
    """Stop with the errors and the server's log if any load connection failed."""
    errors = [e for r in reports for e in r["errors"]]
    failed = sum(r["failed"] for r in reports)
    if failed:
        distinct = sorted(set(errors))[:3]
        raise RuntimeError(
            f"{server.name}: {failed} connections failed, e.g. {distinct}; log tail:\n"
            f"{server.log_tail()}"
        )


def check_alive(server: Server) -> None:
    """Fail loudly, with the server's log, if it died under load."""
    if not server.alive():
        assert server.proc is not None
        raise RuntimeError(
            f"{server.name} exited with code {server.proc.returncode} under load; log tail:\n"
            f"{server.log_tail()}"
        )


# --- figures ----------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class Row:
    server: str
    figures: dict[str, str]


def print_table(title: str, rows: list[Row]) -> None:
    columns = ["server"] + list(dict.fromkeys(k for r in rows for k in r.figures))
    cells = [[r.server] + [r.figures.get(c, "") for c in columns[1:]] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print(f"\n{title}")
    for row in [columns, ["-" * wd for wd in widths], *cells]:
        print("  ".join(v.ljust(wd) for v, wd in zip(row, widths, strict=True)).rstrip())


def ratio_text(
    label: str, roost: float | None, peer: float | None, unit: str = "", fmt: str = ",.0f"
) -> str:
    if not roost or not peer:
        return f"{label}: (not measured for both servers)"
    return (
        f"{label}: Roost {roost:{fmt}}{unit} / Mosquitto {peer:{fmt}}{unit} = {roost / peer:.2f}x"
    )


def run(main: Callable[[], None]) -> None:
    """Run a benchmark's ``main``; Ctrl-C stops it (servers included) without a traceback."""
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted: servers and load generators stopped", file=sys.stderr)
        sys.exit(130)


def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} cores, {model}, load average {load:.2f} at start"
