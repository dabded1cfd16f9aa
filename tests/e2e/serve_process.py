"""``roost serve`` as a child process on free ports, for tests that kill it with ``kill -9``.

Shared by the crash test (one node on SQLite, killed and restarted on the same data
directory) and the cluster fault tests (nodes on NATS, one killed while the others
carry on): ``Server(data_dir, log, args=["--nats", urls], env={"ROOST_NODE": "a"})``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from e2e.helpers import wait_for

ROOST = Path(sys.executable).parent / "roost"
# ``roost serve`` runs on uvloop when it is installed, else on asyncio; the second
# launcher hides uvloop, as on a platform without it.
LAUNCH = {
    "uvloop": [str(ROOST)],
    "asyncio": [sys.executable, "-c",
                "import sys; sys.modules['uvloop'] = None; sys.argv[0] = 'roost'; "
                "from roost.cli.main import main; sys.exit(main())"],
}
# Deep mailboxes: the tests queue more than the default 100 commands per device.
DEFAULT_ENV = {"ROOST_MAILBOX_DEPTH": "100000", "ROOST_LOG_LEVEL": "warning"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``roost serve`` as a child process on free ports, ready (``/healthz`` 200) on return.

    ``args`` are more ``serve`` flags (``--nats ...``), ``env`` more variables over
    :data:`DEFAULT_ENV`. ``token`` is the admin token to use; without one it is read
    from ``DATA_DIR/admin.token`` (a node joining a cluster writes none: pass the
    first node's).
    """

    def __init__(self, data_dir: Path, log: Path, loop: str = "uvloop", *,
                 args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 token: str | None = None, start_timeout: float = 30.0) -> None:
        self.data_dir = data_dir
        self.log = log
        self.mqtt_port = free_port()
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        full_env = {**os.environ, **DEFAULT_ENV, **(env or {})}
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [*LAUNCH[loop], "serve", "--data-dir", str(data_dir),
                 "--mqtt-port", str(self.mqtt_port), "--http-port", str(self.http_port),
                 *args],
                stdout=out, stderr=subprocess.STDOUT, env=full_env,
            )
        wait_for(self._ready, start_timeout, f"roost serve to start (log: {log})", 0.1)
        self.token = token or (data_dir / "admin.token").read_text().strip()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"roost serve exited with {self.proc.returncode}:\n"
                                 + self.log.read_text())
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, timeout: float = 10) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout,
                            headers={"Authorization": f"Bearer {self.token}"})

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
