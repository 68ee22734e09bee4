"""The load ``pyfn bench`` puts on a server: one client in a row, or several at once.

Each client holds one keep-alive connection, as a load balancer in front of a
function does, and checks every answer against the one both runtimes gave when
they were compared (status and body): a wrong answer is counted, never timed as
a right one. Every loop is bounded twice, by a number of requests and by time,
and stops by itself; a client that hangs is given up on after the request timeout.
"""

from __future__ import annotations

import http.client
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyfn_action.config.bench import BenchRequest

REQUEST_TIMEOUT = 60.0
MOST_REQUESTS = 1_000_000  # per measure and client: the time bound comes first


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class Client:
    """One keep-alive connection to ``host:port``, opened again after a failure."""

    def __init__(self, host: str, port: int, timeout: float = REQUEST_TIMEOUT) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._conn: http.client.HTTPConnection | None = None

    def send(self, request: BenchRequest) -> Answer:
        """The answer to ``request``; an error of the connection is an ``OSError``."""
        for attempt in (1, 2):  # a kept-alive connection the server closed: once again
            conn = self._conn or self._connect()
            self._conn = conn
            try:
                conn.request(
                    request.method,
                    request.path,
                    body=request.body or None,
                    headers=dict(request.headers),
                )
                response = conn.getresponse()
                body = response.read()
                if response.will_close:
                    self.close()
                return Answer(response.status, body)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2:
                    raise
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise OSError(str(exc) or type(exc).__name__) from exc
        raise AssertionError("unreachable")

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn.connect()
        if conn.sock is not None:  # each request at once: no wait on the server's ACK
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass(frozen=True)
class Latency:
    """One client, requests in a row: how long each took."""

    count: int
    wrong: int  # answers that were not the expected one (or no answer)
    p50_ms: float
    p95_ms: float
    seconds: float


@dataclass(frozen=True)
class Throughput:
    """Several clients at once: how many right answers a second."""

    clients: int
    count: int
    wrong: int
    rps: float
    seconds: float


def sequential(
    client: Client,
    request: BenchRequest,
    expected: Answer,
    *,
    duration: float,
    most: int = MOST_REQUESTS,
    clock: Callable[[], float] = time.perf_counter,
) -> Latency:
    """Requests one after another for ``duration`` s (at most ``most`` of them)."""
    samples: list[float] = []
    wrong = 0
    began = clock()
    for _ in range(max(most, 1)):
        if samples and clock() - began >= duration:
            break
        started = clock()
        try:
            answer = client.send(request)
        except OSError:
            answer = None
        samples.append(clock() - started)
        if answer != expected:
            wrong += 1
    elapsed = clock() - began
    return Latency(
        count=len(samples),
        wrong=wrong,
        p50_ms=_ms(_quantile(samples, 0.5)),
        p95_ms=_ms(_quantile(samples, 0.95)),
        seconds=round(elapsed, 3),
    )


def concurrent(
    host: str,
    port: int,
    request: BenchRequest,
    expected: Answer,
    *,
    clients: int,
    duration: float,
    most: int = MOST_REQUESTS,
    clock: Callable[[], float] = time.perf_counter,
) -> Throughput:
    """``clients`` clients at once for ``duration`` s: right answers per second."""
    counts = [0] * clients
    wrongs = [0] * clients
    stop = threading.Event()
    start = threading.Barrier(clients + 1)

    def run(n: int) -> None:
        client = Client(host, port)
        try:
            start.wait(timeout=REQUEST_TIMEOUT)
            for _ in range(max(most, 1)):
                if stop.is_set():
                    break
                try:
                    right = client.send(request) == expected
                except OSError:
                    right = False
                if stop.is_set():
                    break  # finished after the measure: not counted
                counts[n] += right
                wrongs[n] += not right
        except threading.BrokenBarrierError:
            pass
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    start.wait(timeout=REQUEST_TIMEOUT)
    began = clock()
    for thread in threads:  # until the time is up, or every client did its ``most``
        thread.join(timeout=max(began + duration - clock(), 0))
    stop.set()
    elapsed = clock() - began
    deadline = time.monotonic() + REQUEST_TIMEOUT
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0))
    count, wrong = sum(counts), sum(wrongs)
    return Throughput(
        clients=clients,
        count=count,
        wrong=wrong,
        rps=round(count / elapsed, 1) if elapsed else 0.0,
        seconds=round(elapsed, 3),
    )


def first_answer(
    host: str,
    port: int,
    request: BenchRequest,
    *,
    alive: Callable[[], bool],
    limit: float,
    clock: Callable[[], float] = time.perf_counter,
    poll: float = 0.01,
) -> Answer:
    """The first answer a starting server gives (any status), polling every ``poll`` s
    for at most ``limit`` s while ``alive()``; ``TimeoutError`` if none came."""
    began = clock()
    for _ in range(int(limit / poll) + 2):
        if clock() - began > limit or not alive():
            break
        client = Client(host, port, timeout=max(limit - (clock() - began), poll))
        try:
            return client.send(request)
        except OSError:
            time.sleep(poll)
        finally:
            client.close()
    raise TimeoutError(f"no answer within {limit:g} s")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _quantile(samples: list[float], q: float) -> float:
    if not samples:
        return 0.0
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(q * 100) - 1]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
