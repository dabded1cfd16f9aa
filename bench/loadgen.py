"""An MQTT load generator that should never be the bottleneck: uvloop, raw protocols, batches.

One *job* runs in one process and holds *fleets* of identical connections:

* ``publish`` - each connection publishes to its topic; QoS 1 keeps ``window`` messages in
  flight and re-sends the pre-encoded packet of a packet id as soon as its PUBACK arrives
  (all re-sends of one read leave in one write); QoS 0 writes blocks of packets for as long
  as the socket takes them.
* ``count`` - subscribes to a filter and counts what arrives (PUBACKing QoS 1 in batches).
* ``respond`` - a device that answers every command ``.../commands/{name}/{cid}`` at once
  on ``devices/{id}/responses/{cid}``.
* ``idle`` - connects, subscribes to its commands, and does nothing else.
* ``connect`` - measures CONNECT -> CONNACK for each device, ``concurrency`` at a time.

The parent drives every job in lock step through a pipe: ``ready`` (all connected) -> ``go``
-> warm-up -> measured window -> drain -> ``done`` with counts. Jobs without a duration
(responders, idle devices) run until the parent says ``end``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
import socket
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import mqttwire as w
from common import raise_nofile_limit

PAYLOAD_BYTE = b"x"
QOS0_SNDBUF = 64 * 1024


@dataclass
class Device:
    id: str
    key: str | None = None  # None: connect anonymously (Mosquitto)


@dataclass
class Fleet:
    """A group of identical connections inside one job."""

    role: str  # publish | count | respond | idle | connect
    devices: list[Device]
    topic: str = "devices/{id}/telemetry"  # publish topic or subscription filter
    qos: int = 1
    window: int = 64  # QoS 1 messages in flight per connection (publish)
    payload: int = 64  # bytes per message (publish)
    disconnect: bool = False  # connect: send DISCONNECT right after CONNACK


@dataclass
class Job:
    """What one load-generator process does; pickled into the process."""

    host: str
    port: int
    fleets: list[Fleet]
    warmup: float = 1.0
    duration: float = 0.0  # 0: run until the parent says "end"
    drain: float = 3.0  # after the window: wait this long at most for acks / stragglers
    concurrency: int = 100  # connection attempts in progress at once
    keepalive: int = 60


# --- connections ----------------------------------------------------------------------------


class Client(asyncio.Protocol):
    """One MQTT connection; subclasses react to PUBLISH / PUBACK."""

    __slots__ = ("transport", "buf", "connack", "suback", "closed", "device", "paused", "_connect")

    def __init__(self, device: Device, keepalive: int) -> None:
        self.device = device
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buf = bytearray()
        loop = asyncio.get_running_loop()
        self.connack: asyncio.Future[int] = loop.create_future()
        self.suback: asyncio.Future[int] | None = None
        self.closed = False
        self.paused = False
        self._connect = w.connect(device.id, device.key and device.id, device.key, keepalive)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self._connect)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.connack.done():
            self.connack.set_exception(ConnectionError(f"closed before CONNACK: {exc}"))

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    def data_received(self, data: bytes) -> None:
        self.buf += data
        out: list[bytes] = []
        for kind, flags, body in w.split(self.buf):
            if kind == w.PUBLISH:
                self.on_publish(flags, body, out)
            elif kind == w.PUBACK:
                self.on_puback(body, out)  # type: ignore[arg-type]
            elif kind == w.CONNACK:
                if not self.connack.done():
                    self.connack.set_result(body[1])
            elif kind == w.SUBACK and self.suback is not None and not self.suback.done():
                self.suback.set_result(body[2])
        if out:
            self.transport.write(b"".join(out))

    def on_publish(self, flags: int, body: bytes, out: list[bytes]) -> None:
        if flags & 6:  # QoS 1: ack with the packet id that follows the topic
            pos = 2 + (body[0] << 8 | body[1])
            out.append(b"\x40\x02" + body[pos : pos + 2])

    def on_puback(self, pid: int, out: list[bytes]) -> None:
        pass

    async def subscribe(self, topic: str, qos: int = 1) -> int:
        self.suback = asyncio.get_running_loop().create_future()
        self.transport.write(w.subscribe(1, topic, qos))
        return await self.suback

    def send(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def close(self, disconnect: bool = True) -> None:
        if not self.closed and self.transport is not None:
            if disconnect:
                self.transport.write(w.DISCONNECT_PACKET)
            self.transport.close()
            self.closed = True


class Publisher(Client):
    __slots__ = ("packets", "block", "sent", "acked", "running")

    def __init__(self, device: Device, keepalive: int, fleet: Fleet) -> None:
        super().__init__(device, keepalive)
        topic = fleet.topic.format(id=device.id)
        payload = PAYLOAD_BYTE * fleet.payload
        # packets[pid] is the whole pre-encoded PUBLISH for that packet id, re-sent on its ack
        self.packets = [b""] + [
            w.publish(topic, payload, 1, pid) for pid in range(1, 1 + fleet.window)
        ]
        self.block = w.publish(topic, payload, 0) * 64 if fleet.qos == 0 else b""
        self.sent = self.acked = 0
        self.running = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.block:
            # QoS 0 has no window: without this, loopback autotuning lets megabytes of
            # messages queue in the kernel and the server works through them long after.
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, QOS0_SNDBUF)
        super().connection_made(transport)

    def start(self) -> None:
        self.running = True
        if self.block:
            self._pump()
        else:
            self.sent += len(self.packets) - 1
            self.transport.write(b"".join(self.packets))

    def _pump(self) -> None:
        # QoS 0: keep the socket full, yielding to the loop between blocks; once the
        # transport pauses us, resume_writing() restarts the pump (no busy loop)
        if self.running and not self.closed and not self.paused:
            self.transport.write(self.block)
            self.sent += 64
            if not self.paused:  # exactly one pump: scheduled here, or by resume_writing()
                asyncio.get_running_loop().call_soon(self._pump)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.block:
            self._pump()

    def data_received(self, data: bytes) -> None:
        # The hot path, inlined: a read of N PUBACKs becomes one write of N PUBLISHes.
        self.buf += data
        out = []
        for kind, _flags, body in w.split(self.buf):
            if kind == w.PUBACK:
                self.acked += 1
                if self.running:
                    out.append(self.packets[body])  # type: ignore[index]
            elif kind == w.CONNACK and not self.connack.done():
                self.connack.set_result(body[1])
        if out:
            self.sent += len(out)
            self.transport.write(b"".join(out))

    @property
    def count(self) -> int:
        return self.acked if not self.block else self.sent


class Counter(Client):
    __slots__ = ("count", "last")

    def __init__(self, device: Device, keepalive: int) -> None:
        super().__init__(device, keepalive)
        self.count = 0
        self.last = 0.0

    def on_publish(self, flags: int, body: bytes, out: list[bytes]) -> None:
        self.count += 1
        self.last = time.time()
        super().on_publish(flags, body, out)


class Responder(Client):
    """A device that answers each command at once (status 200: the default topic)."""

    __slots__ = ("prefix", "qos", "pid", "count")

    def __init__(self, device: Device, keepalive: int, qos: int) -> None:
        super().__init__(device, keepalive)
        self.prefix = f"devices/{device.id}/responses/".encode()
        self.qos = qos
        self.pid = 0
        self.count = 0

    def on_publish(self, flags: int, body: bytes, out: list[bytes]) -> None:
        topic, qos, pid, _payload = w.parse_publish(flags, body)
        if qos:
            out.append(w.puback(pid))
        self.pid = self.pid % 65535 + 1
        out.append(
            w.publish(self.prefix + topic[topic.rfind(b"/") + 1 :], b"ok", self.qos, self.pid)
        )
        self.count += 1


class Requester(Client):
    """The service side of an MQTT request/response: calls ``on_reply(cid)`` for each answer."""

    __slots__ = ("on_reply", "pid")

    def __init__(self, device: Device, keepalive: int, on_reply: Any) -> None:
        super().__init__(device, keepalive)
        self.on_reply = on_reply
        self.pid = 0

    def request(self, topic: bytes, payload: bytes, qos: int = 1) -> None:
        self.pid = self.pid % 65535 + 1
        self.send(w.publish(topic, payload, qos, self.pid))

    def on_publish(self, flags: int, body: bytes, out: list[bytes]) -> None:
        super().on_publish(flags, body, out)
        topic = w.parse_publish(flags, body)[0]
        self.on_reply(topic[topic.rfind(b"/") + 1 :])


async def open_client(host: str, port: int, make: Any, timeout: float = 30.0) -> Client:
    """Connect, send CONNECT, wait for CONNACK; raise on refusal."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):  # cheaper than wait_for: no extra task
        _, client = await loop.create_connection(make, host, port)
        rc = await client.connack
    if rc:
        client.close(disconnect=False)
        raise ConnectionRefusedError(f"CONNACK return code {rc}")
    return client


# --- fleets inside a worker -----------------------------------------------------------------


def _factory(fleet: Fleet, device: Device, keepalive: int) -> Any:
    if fleet.role == "publish":
        return lambda: Publisher(device, keepalive, fleet)
    if fleet.role == "count":
        return lambda: Counter(device, keepalive)
    if fleet.role == "respond":
        return lambda: Responder(device, keepalive, fleet.qos)
    return lambda: Client(device, keepalive)


async def _open_fleet(
    job: Job, fleet: Fleet, gate: asyncio.Semaphore
) -> tuple[list[Any], list[str]]:
    async def one(device: Device) -> Any:
        async with gate:
            client = await open_client(job.host, job.port, _factory(fleet, device, job.keepalive))
            if fleet.role in ("count", "respond", "idle"):
                topic = fleet.topic if fleet.role == "count" else "devices/{id}/commands/#"
                rc = await asyncio.wait_for(
                    client.subscribe(topic.format(id=device.id), fleet.qos), 30
                )
                if rc == 0x80:
                    raise PermissionError(f"SUBSCRIBE {topic!r} refused")
            return client

    results = await asyncio.gather(*(one(d) for d in fleet.devices), return_exceptions=True)
    clients = [r for r in results if isinstance(r, Client)]
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    return clients, errors


def _counts(fleets: list[tuple[Fleet, list[Any]]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for fleet, clients in fleets:
        if fleet.role in ("publish", "count", "respond"):
            out[fleet.role] = out.get(fleet.role, 0) + sum(c.count for c in clients)
    return out


def _settled(fleets: list[tuple[Fleet, list[Any]]], quiet: float) -> bool:
    now = time.time()
    for fleet, clients in fleets:
        for c in clients:
            if fleet.role == "publish" and not c.closed:
                if c.acked < c.sent if not c.block else c.transport.get_write_buffer_size():
                    return False
            if fleet.role == "count" and now - c.last < quiet:
                return False
    return True


async def _pinger(clients: list[Client], keepalive: int) -> None:
    while keepalive:
        await asyncio.sleep(keepalive / 2)
        for c in clients:
            c.send(w.PINGREQ_PACKET)


async def _timed_phase(job: Job, fleets: list[tuple[Fleet, list[Any]]]) -> dict[str, Any]:
    for fleet, clients in fleets:
        if fleet.role == "publish":
            for c in clients:
                c.start()
    await asyncio.sleep(job.warmup)
    t1, c1 = time.time(), _counts(fleets)
    await asyncio.sleep(job.duration)
    t2, c2 = time.time(), _counts(fleets)
    for fleet, clients in fleets:
        if fleet.role == "publish":
            for c in clients:
                c.running = False
    deadline = t2 + job.drain
    while time.time() < deadline and not _settled(fleets, quiet=0.5):
        await asyncio.sleep(0.05)
    last = max((c.last for f, cs in fleets if f.role == "count" for c in cs), default=0.0)
    closed = sum(c.closed for _, cs in fleets for c in cs)
    return {
        "t1": t1,
        "t2": t2,
        "c1": c1,
        "c2": c2,
        "final": _counts(fleets),
        "last": last,
        "closed_early": closed,
    }


async def _connect_phase(job: Job, fleet: Fleet) -> tuple[dict[str, Any], list[Client]]:
    gate = asyncio.Semaphore(job.concurrency)
    latencies: list[float] = []
    errors: list[str] = []
    kept: list[Client] = []

    async def one(device: Device) -> None:
        async with gate:
            t = time.perf_counter()
            try:
                client = await open_client(
                    job.host, job.port, _factory(fleet, device, job.keepalive)
                )
            except Exception as exc:  # noqa: BLE001 - counted and reported, not fatal
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            latencies.append(time.perf_counter() - t)
            if fleet.disconnect:
                client.close()
            else:
                kept.append(client)

    t0 = time.time()
    await asyncio.gather(*(one(d) for d in fleet.devices))
    return {
        "t0": t0,
        "t_end": time.time(),
        "latencies": latencies,
        "errors": errors[:20],
        "failed": len(errors),
    }, kept


async def _run(job: Job, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()

    async def recv() -> Any:
        return await loop.run_in_executor(None, pipe.recv)

    gate = asyncio.Semaphore(job.concurrency)
    fleets: list[tuple[Fleet, list[Any]]] = []
    errors: list[str] = []
    for fleet in job.fleets:
        if fleet.role != "connect":
            clients, errs = await _open_fleet(job, fleet, gate)
            fleets.append((fleet, clients))
            errors += errs
    everyone = [c for _, cs in fleets for c in cs]
    pinger = asyncio.ensure_future(_pinger(everyone, job.keepalive))
    pipe.send(("ready", {"connected": len(everyone), "failed": len(errors), "errors": errors[:20]}))
    await recv()  # "go"
    kept: list[Client] = []
    if job.fleets and job.fleets[0].role == "connect":
        stats, kept = await _connect_phase(job, job.fleets[0])
        pipe.send(("done", stats))
        await recv()  # "end": keep the connections until the parent has measured
    elif job.duration:
        pipe.send(("done", await _timed_phase(job, fleets)))
        await recv()  # "end": the server may still be working through what we sent
    else:
        await recv()  # "end"
        pipe.send(
            ("done", {"final": _counts(fleets), "closed_early": sum(c.closed for c in everyone)})
        )
    pinger.cancel()
    for c in everyone + kept:
        c.close()
    await asyncio.sleep(0.2)  # let the DISCONNECTs leave


def worker_main(job: Job, pipe: Connection) -> None:
    # Ctrl-C is the parent's to handle: it ends the jobs (or kills them) and stops the servers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import uvloop

        raise_nofile_limit()
        uvloop.run(_run(job, pipe))
    except BaseException:
        pipe.send(("error", traceback.format_exc()))
        raise


# --- the parent's side ------------------------------------------------------------------------


@dataclass
class LoadGen:
    """Runs jobs in worker processes and drives them in lock step."""

    jobs: list[Job]
    procs: list[Any] = field(default_factory=list)
    pipes: list[Connection] = field(default_factory=list)
    _ended: bool = False

    def __enter__(self) -> LoadGen:
        ctx = multiprocessing.get_context("spawn")  # no inherited event loop or sockets
        for job in self.jobs:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(job, child), daemon=True)
            proc.start()
            self.procs.append(proc)
            self.pipes.append(parent)
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._ended:
            with contextlib.suppress(OSError):
                self.end()
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def _recv(self, pipe: Connection, expect: str, timeout: float) -> dict[str, Any]:
        if not pipe.poll(timeout):
            raise TimeoutError(f"load generator did not report {expect!r} within {timeout:.0f} s")
        try:
            kind, body = pipe.recv()
        except EOFError:
            raise RuntimeError("a load generator process died (see its traceback above)") from None
        if kind == "error":
            raise RuntimeError(f"load generator process failed:\n{body}")
        assert kind == expect, (kind, expect)
        return body

    def ready(self, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Wait until every job has connected its fleets; returns their connect reports."""
        return [self._recv(p, "ready", timeout) for p in self.pipes]

    def go(self) -> float:
        for p in self.pipes:
            p.send("go")
        return time.time()

    def done(self, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Results of timed or connect jobs (they report on their own, then wait for ``end``)."""
        return [self._recv(p, "done", timeout) for p in self.pipes]

    def end(self) -> None:
        """Tell every job to close its connections and exit (untimed ones report first)."""
        self._ended = True
        for p in self.pipes:
            p.send("end")

    def finish(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """End untimed jobs and collect their results."""
        self.end()
        return self.done(timeout)


def split_devices(devices: list[Device], parts: int) -> list[list[Device]]:
    """Deal devices round-robin into ``parts`` lists (one per process)."""
    return [devices[i::parts] for i in range(parts)]
