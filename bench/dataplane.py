"""Data plane overhead: requests/s and latency through HAProxy (configured as Runyard configures it) vs. direct.

Starts, on loopback only:
  backend - a small HTTP/1.1 keep-alive server (asyncio, its own process) answering a short body
  haproxy - Runyard's rendered configuration; `bench.us-east-1.localhost` routed to a pool backend
            whose slot 1 points at the backend (unlimited maxconn, no health checks), through the runtime API
then drives each target in turn with the same load: --workers processes, each with --connections keep-alive
connections sending one request at a time, for --seconds (after --warmup seconds not counted).

Usage: .venv/bin/python bench/dataplane.py [--seconds 5] [--workers 4] [--connections 16] [--warmup 1] [--keep]
The last line is `ratio: X` = through-HAProxy requests/s / direct requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.pool import Pool
from pathlib import Path

from runyard.dataplane.haproxy import HAProxyProcess, HAProxySettings, pool_backend

HOST = "bench.us-east-1.localhost"
BODY = b"Hello, bench!"
REQUEST = f"GET / HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: runyard-bench\r\n\r\n".encode()
MAX_SAMPLES = 2_000_000  # latencies kept per worker; the count goes on past it
WORKER_MARGIN = 30.0  # seconds a worker may take beyond its run before it counts as hung

# The instance: answers every request on a connection with the same short response, pipelining-safe.
BACKEND = """\
import asyncio, sys

BODY = sys.argv[2].encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: "
    + str(len(BODY)).encode() + b"\\r\\n\\r\\n" + BODY
)


class Instance(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""

    def data_received(self, data):
        self.buffer += data
        count = self.buffer.count(b"\\r\\n\\r\\n")
        if count:
            self.buffer = self.buffer[self.buffer.rfind(b"\\r\\n\\r\\n") + 4 :]
            self.transport.write(RESPONSE * count)
        elif len(self.buffer) > 65536:
            self.transport.close()


async def main():
    server = await asyncio.get_running_loop().create_server(Instance, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    async with server:
        await server.serve_forever()


asyncio.run(main())
"""


@dataclass(frozen=True, slots=True)
class WorkerResult:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]


@dataclass(frozen=True, slots=True)
class Measurement:
    name: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the backend exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise SystemExit(f"the backend did not listen on port {port} within {timeout} s")


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response with a Content-Length body; return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
            break
    if length:
        await reader.readexactly(length)
    return status


async def drive(port: int, connections: int, start_at: float, warmup: float, seconds: float) -> WorkerResult:
    """`connections` keep-alive clients, one request in flight each, counted between warmup and end."""
    measure_from = start_at + warmup
    stop_at = measure_from + seconds
    latencies: list[float] = []
    totals = {"requests": 0, "errors": 0}
    clock = time.perf_counter
    # perf_counter is per process; convert the shared wall-clock instants once.
    offset = clock() - time.time()
    measure_from_pc, stop_at_pc = measure_from + offset, stop_at + offset
    await asyncio.sleep(max(0.0, start_at - time.time()))

    async def client() -> None:
        writer: asyncio.StreamWriter | None = None
        while clock() < stop_at_pc:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                sent = clock()
                writer.write(REQUEST)
                status = await read_response(reader)
                done = clock()
                if sent >= measure_from_pc and done <= stop_at_pc:
                    totals["requests"] += 1
                    if status != 200:
                        totals["errors"] += 1
                    if len(latencies) < MAX_SAMPLES:
                        latencies.append(done - sent)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                if clock() >= measure_from_pc:
                    totals["errors"] += 1
                if writer is not None:
                    writer.close()
                writer = None
                await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    async with asyncio.timeout(warmup + seconds + WORKER_MARGIN):
        await asyncio.gather(*(client() for _ in range(connections)))
    return WorkerResult(totals["requests"], totals["errors"], seconds, latencies)


def worker(port: int, connections: int, start_at: float, warmup: float, seconds: float) -> WorkerResult:
    return asyncio.run(drive(port, connections, start_at, warmup, seconds))


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it terminates the pool


def exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # runs the same cleanup as Ctrl-C


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(pool: Pool, name: str, port: int, args: argparse.Namespace) -> Measurement:
    start_at = time.time() + 0.5  # every worker starts its clients at the same instant
    jobs = [(port, args.connections, start_at, args.warmup, args.seconds)] * args.workers
    pending = pool.starmap_async(worker, jobs)
    results: list[WorkerResult] = pending.get(timeout=0.5 + args.warmup + args.seconds + 2 * WORKER_MARGIN)
    latencies = sorted(latency for result in results for latency in result.latencies)
    return Measurement(
        name=name,
        requests=sum(result.requests for result in results),
        errors=sum(result.errors for result in results),
        seconds=args.seconds,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
    )


async def start_plane(config_dir: Path, backend_port: int) -> HAProxyProcess:
    # Nothing listens on the activator port: a request reaching it fails, which the routing check catches.
    settings = HAProxySettings(http_port=free_port(), activator_port=free_port())
    plane = HAProxyProcess(config_dir, settings=settings)
    await plane.start()
    try:
        runtime = plane.runtime()
        await runtime.set_host(HOST, pool_backend(0))
        await runtime.enable_slot(
            pool_backend(0), 1, "127.0.0.1", backend_port, weight=1, maxconn=0, health_check=False
        )
    except BaseException:
        await plane.stop(grace=1.0)
        raise
    return plane


def check_route(port: int) -> None:
    """One request through HAProxy must reach the backend, not the (absent) activator."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(REQUEST)
        answer = b""
        while not answer.endswith(BODY) and len(answer) < 65536:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    if not answer.startswith(b"HTTP/1.1 200") or not answer.endswith(BODY):
        raise SystemExit(f"HAProxy did not route {HOST} to the backend: {answer[:200]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per target (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each (default 1)")
    parser.add_argument("--workers", type=int, default=4, help="load generator processes (default 4)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections per worker (default 16)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (HAProxy's files)")
    args = parser.parse_args()
    if not (0 < args.seconds <= 600 and 0 <= args.warmup <= 60):
        parser.error("--seconds must be in (0, 600] and --warmup in [0, 60]")
    if not (1 <= args.workers <= 64 and 1 <= args.connections <= 1000):
        parser.error("--workers must be in 1-64 and --connections in 1-1000")

    signal.signal(signal.SIGTERM, exit_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="runyard-bench-"))
    backend_port = free_port()
    backend: subprocess.Popen[bytes] | None = None
    plane: HAProxyProcess | None = None
    pool: Pool | None = None
    try:
        backend = subprocess.Popen(
            [sys.executable, "-c", BACKEND, str(backend_port), BODY.decode()],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_listening(backend_port, backend)
        plane = asyncio.run(start_plane(workdir / "haproxy", backend_port))
        http_port = plane.settings.http_port
        check_route(http_port)
        pool = multiprocessing.get_context("spawn").Pool(args.workers, initializer=ignore_sigint)
        total = args.workers * args.connections
        print(
            f"{args.workers} workers x {args.connections} connections = {total} in flight,"
            f" {args.seconds:g} s per target after {args.warmup:g} s warmup, {os.cpu_count()} cores",
            flush=True,
        )
        results = [
            measure(pool, "direct", backend_port, args),
            measure(pool, "haproxy", http_port, args),
        ]
        print(f"{'target':<8} {'requests':>10} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for row in results:
            print(
                f"{row.name:<8} {row.requests:>10} {row.throughput:>10.0f}"
                f" {row.p50_ms:>8.2f} {row.p99_ms:>8.2f} {row.errors:>7}"
            )
        direct, through = results
        if direct.throughput == 0:
            raise SystemExit("no request completed against the backend directly")
        print(f"ratio: {through.throughput / direct.throughput:.2f}")
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if plane is not None:
            asyncio.run(plane.stop(grace=1.0))
        if backend is not None:
            backend.terminate()
            try:
                backend.wait(timeout=5)
            except subprocess.TimeoutExpired:
                backend.kill()
                backend.wait(timeout=5)
        if args.keep:
            print(f"files kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit("interrupted") from None
