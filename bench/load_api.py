"""The API under load (issue 17), run by hand:

    python bench/load_api.py [--rates 50,100,200] [--duration 60] [--processes 1,2] [--baseline REF]
                             [--database-url postgresql+psycopg://flowbuilder:flowbuilder@127.0.0.1:5432/flowbuilder_bench]

Serves the API as production does: `python -m flowbuilder.runtime.api` (uvicorn, one process per ECS task), N
processes on N ports, which the load generator visits in turn as the load balancer would; PostgreSQL; SQS on a
local moto server. The generator is an open model: request i leaves at start + i/rate whether or not earlier
ones have answered, and its latency counts from that scheduled time, so a slow API shows as latency (and as
generator lag, printed) instead of as a lower rate. Half the requests are `POST /workflows/{id}/executions`,
half `GET /executions/{id}` of an execution created earlier (warm-up or an earlier POST of the run).

Every 202 is accounted for: its ID must be a row of the run's workflow and exactly one message in the run's queue
(received and deleted while the run goes on, as workers would, and until the queue stays empty after it; every
body compared); rows no 202 announced (a POST that timed out) are counted too.

CPU is shared on this machine: each line says how much of it the generator, the API processes, PostgreSQL's
backends for this database and moto used (percent of one core) and how busy the whole machine was.
`--baseline REF` also serves the API from REF's runtime/ (git archive into a temporary directory, first on
PYTHONPATH), alternating with the working tree's for each configuration, so every figure has a baseline
measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from sqlalchemy import create_engine, text

from flowbuilder.runtime.db.session import migrate

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://flowbuilder:flowbuilder@127.0.0.1:5432/flowbuilder_bench"
API_KEY = "bench-key"
TICKS = os.sysconf("SC_CLK_TCK")
DEFINITION = {"steps": [{"type": "transform", "name": "echo", "expression": "input"}]}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer") from None
            time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Cpu:
    """CPU used during a window by groups of processes (percent of one core)."""
    groups: dict[str, list[int]]
    backends: Any  # () -> list of PostgreSQL backend pids of the database
    start: dict[int, float] = field(default_factory=dict)
    wall: float = 0.0
    machine: tuple[float, float] = (0.0, 0.0)
    own: float = 0.0

    def begin(self) -> None:
        pids = [p for ps in self.groups.values() for p in ps] + self.backends()
        self.start = {p: cpu_seconds(p) for p in pids}
        self.wall, self.machine = time.monotonic(), machine_busy()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.own = usage.ru_utime + usage.ru_stime

    def end(self) -> dict[str, float]:
        wall = time.monotonic() - self.wall
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out = {"generator": (usage.ru_utime + usage.ru_stime - self.own) / wall * 100}
        groups = {**self.groups, "postgres": self.backends()}
        for name, pids in groups.items():
            out[name] = sum(cpu_seconds(p) - self.start.get(p, 0.0) for p in pids) / wall * 100
        busy, total = machine_busy()
        out["machine"] = (busy - self.machine[0]) / max(1.0, total - self.machine[1]) * 100 * (os.cpu_count() or 1)
        return out


@contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/moto-api/")
        os.environ.update({"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                           "AWS_DEFAULT_REGION": "us-east-1"})
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def moto_pid(url: str) -> int:
    port = url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    return int(out.split("pid=", 1)[1].split(",", 1)[0]) if "pid=" in out else 0


@contextmanager
def api_processes(count: int, database_url: str, queue_url: str, pythonpath: str | None,
                  complaints: Counter[str]) -> Iterator[list[tuple[int, int]]]:
    """`count` API processes as ECS runs them, [(pid, port)], logging to files (uvicorn's access log included,
    as in production) that are removed afterwards; their warning and error lines are counted in `complaints`."""
    procs: list[tuple[subprocess.Popen[bytes], int]] = []
    logs = tempfile.TemporaryDirectory()
    env = {**os.environ, "FLOWBUILDER_DATABASE_URL": database_url, "FLOWBUILDER_QUEUE_URL": queue_url,
           "FLOWBUILDER_API_KEYS": API_KEY, "FLOWBUILDER_HOST": "127.0.0.1", "FLOWBUILDER_ROLE": "api"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    try:
        for n in range(count):
            port = free_port()
            with open(Path(logs.name) / f"api{n}.log", "wb") as log:
                proc = subprocess.Popen([sys.executable, "-m", "flowbuilder.runtime.api"],
                                        env={**env, "PORT": str(port)}, stdout=log, stderr=log)
            procs.append((proc, port))
        for _, port in procs:
            wait_http(f"http://127.0.0.1:{port}/healthz")
        yield [(p.pid, port) for p, port in procs]
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:  # requests still stuck inside it (a deadlocked pool)
                proc.kill()
                proc.wait()
        for written in Path(logs.name).iterdir():
            for line in written.read_text(errors="replace").splitlines():
                if any(word in line for word in ("WARNING", "ERROR", "Traceback")):
                    complaints[line.split(" ", 2)[-1][:100]] += 1
        logs.cleanup()


@dataclass
class Sample:
    kind: str  # "post" or "get"
    status: int  # 0: no answer (exception)
    latency: float  # seconds from the scheduled send
    lag: float  # seconds the generator sent it late


class Http:
    """A minimal HTTP/1.1 client on asyncio streams, with kept-alive connections to one port: httpx cost the
    generator about 2.7 ms of CPU per request (55% of a core at 200 requests/s, on a machine with two), enough
    to fall behind its own schedule; this costs a fraction of that. Bodies are JSON; the API answers with a
    Content-Length."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.reconnects = 0  # requests sent again on a new connection (the server had closed the idle one)
        self.head = f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {API_KEY}\r\n"

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        reused = bool(self.idle)
        reader, writer = self.idle.pop() if reused else await asyncio.open_connection("127.0.0.1", self.port)
        try:
            payload = b"" if body is None else json.dumps(body).encode()
            extra = f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n" if payload else ""
            writer.write(f"{method} {path} HTTP/1.1\r\n{self.head}{extra}\r\n".encode() + payload)
            first = await reader.readline()
            if not first and reused:  # the server closed this idle connection first: it read nothing, so again
                writer.close()
                self.reconnects += 1
                return await self.request(method, path, body)
            status = int(first.split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            answer = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        self.idle.append((reader, writer))
        return status, json.loads(answer) if answer else None

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def generate(ports: list[int], workflow_id: str, created: list[str], rate: float, duration: float,
                   accepted: list[str]) -> tuple[list[Sample], float, int]:
    """Send rate*duration requests on schedule; (samples, seconds from the first send to the last answer,
    requests sent again because the API had closed an idle connection)."""
    clients = [Http(p) for p in ports]
    samples: list[Sample] = []
    loop = asyncio.get_running_loop()

    async def one(i: int, at: float) -> None:
        lag = loop.time() - at
        client = clients[i % len(clients)]  # round robin, as the load balancer does
        kind = "post" if i % 2 == 0 else "get"
        status = 0
        try:
            if kind == "post":
                status, answer = await asyncio.wait_for(
                    client.request("POST", f"/workflows/{workflow_id}/executions", {"input": {"i": i}}), 30)
                if status == 202:
                    accepted.append(answer["id"])
                    created.append(answer["id"])
            else:
                status, _ = await asyncio.wait_for(client.request("GET", f"/executions/{random.choice(created)}"), 30)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, TimeoutError):
            pass
        samples.append(Sample(kind, status, loop.time() - at, lag))

    total = int(rate * duration)
    tasks = []
    start = loop.time() + 0.05
    for i in range(total):
        at = start + i / rate
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, at)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    for client in clients:
        client.close()
    return samples, elapsed, sum(c.reconnects for c in clients)


def warm_up(ports: list[int], workflow_id: str, accepted: list[str]) -> None:
    """Each process's first requests (routes built, pool and SQS client made): 10 POSTs and 10 GETs each."""
    with httpx.Client(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as client:
        for port in ports:
            for i in range(10):
                response = client.post(f"http://127.0.0.1:{port}/workflows/{workflow_id}/executions",
                                       json={"input": {"warm": i}})
                response.raise_for_status()
                accepted.append(response.json()["id"])
                client.get(f"http://127.0.0.1:{port}/executions/{accepted[-1]}").raise_for_status()


class Drainer(threading.Thread):
    """Receives and deletes the run's messages while it runs, as workers would, keeping every body. moto's
    SendMessage slows with the queue's depth (7 ms per send into an empty queue, 38 ms at 2,000 messages, on
    this machine), so a queue left to fill would measure moto; SQS's sends do not depend on depth."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        super().__init__(daemon=True)
        self.sqs, self.queue_url = sqs, queue_url
        self.bodies: Counter[str] = Counter()
        self.stopping = threading.Event()
        self.cpu = 0.0  # this thread's CPU seconds, not the generator's

    def run(self) -> None:
        quiet = 0  # empty receives begun after the run ended
        while quiet < 3:
            stopping = self.stopping.is_set()
            found = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                             VisibilityTimeout=600).get("Messages", [])
            quiet = quiet + 1 if stopping and not found else 0
            for message in found:
                self.bodies[message["Body"]] += 1
            if found:
                self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(found)])
            self.cpu = time.thread_time()

    def finish(self) -> Counter[str]:
        """Every body received, once the queue has stayed empty for three receives after the run."""
        self.stopping.set()
        self.join()
        return self.bodies


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def run_one(label: str, processes: int, rate: float, duration: float, database_url: str, sqs: Any,
            moto: int, pythonpath: str | None) -> dict[str, Any]:
    queue_url = sqs.create_queue(QueueName=f"load-{uuid.uuid4().hex[:8]}",
                                 Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
    db = create_engine(database_url)
    with db.begin() as connection:
        workflow_id = str(uuid.uuid4())
        connection.execute(text("INSERT INTO workflows (id, name, version, definition, created_at, updated_at) "
                                "VALUES (:id, :name, 1, :d, now(), now())"),
                           {"id": workflow_id, "name": f"load-{workflow_id[:8]}", "d": json.dumps(DEFINITION)})
    database = database_url.rsplit("/", 1)[1]

    def backends() -> list[int]:
        with db.connect() as connection:
            return list(connection.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = :d "
                                                "AND pid <> pg_backend_pid()"), {"d": database}))

    accepted: list[str] = []
    complaints: Counter[str] = Counter()
    with api_processes(processes, database_url, queue_url, pythonpath, complaints) as apis:
        ports = [port for _, port in apis]
        warm_up(ports, workflow_id, accepted)
        created = list(accepted)
        cpu = Cpu({"api": [pid for pid, _ in apis], "moto": [moto]}, backends)
        drainer = Drainer(boto3.client("sqs"), queue_url)
        drainer.start()
        cpu.begin()
        samples, elapsed, reconnects = asyncio.run(generate(ports, workflow_id, created, rate, duration, accepted))
        used = cpu.end()
        drained_cpu = drainer.cpu
    with db.connect() as connection:
        rows = set(connection.scalars(text("SELECT id FROM executions WHERE workflow_id = :w"), {"w": workflow_id}))
        unsent = connection.scalar(text("SELECT count(*) FROM executions WHERE workflow_id = :w "
                                        "AND enqueued_at IS NULL"), {"w": workflow_id})
    db.dispose()
    bodies = drainer.finish()
    used["generator"] -= drained_cpu / elapsed * 100  # the drainer's receives are the workers' part
    sqs.delete_queue(QueueUrl=queue_url)
    ids = Counter(accepted)
    latencies = [s.latency * 1000 for s in samples]
    errors = Counter(s.status for s in samples if s.status not in (200, 202))
    return {
        "label": label, "processes": processes, "rate": rate, "sent": len(samples),
        "achieved": sum(1 for s in samples if s.status) / elapsed,
        "p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "p99": percentile(latencies, 99),
        "max": max(latencies), "post_p99": percentile([s.latency * 1000 for s in samples if s.kind == "post"], 99),
        "get_p99": percentile([s.latency * 1000 for s in samples if s.kind == "get"], 99),
        "lag_p99": percentile([s.lag * 1000 for s in samples], 99),
        "errors": sum(errors.values()), "error_kinds": dict(errors),
        "accepted": len(accepted), "duplicate_ids": sum(n - 1 for n in ids.values() if n > 1),
        "missing_rows": len(set(ids) - rows), "unannounced_rows": len(rows - set(ids)), "unsent": unsent,
        "lost_messages": len(set(ids) - set(bodies)),
        "duplicate_messages": sum(n - 1 for n in bodies.values() if n > 1),
        "stray_messages": len(set(bodies) - set(ids)),
        "reconnects": reconnects, "cpu": used, "log": dict(complaints.most_common(3)),
    }


def baseline_tree(ref: str) -> str:
    """REF's runtime/ as flowbuilder/runtime in a temporary directory, for PYTHONPATH."""
    root = tempfile.mkdtemp(prefix="fbbase-")
    Path(root, "flowbuilder").mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "runtime"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(Path(root, "flowbuilder"))], input=archive.stdout, check=True)
    return root


def report(r: dict[str, Any]) -> str:
    cpu = r["cpu"]
    lost = r["missing_rows"] + r["lost_messages"]
    dup = r["duplicate_ids"] + r["duplicate_messages"]
    return (f"{r['label']:<9} {r['processes']:>2} {r['rate']:>5.0f} {r['achieved']:>7.1f} "
            f"{r['p50']:>6.1f} {r['p95']:>7.1f} {r['p99']:>7.1f} {r['max']:>7.0f} {r['post_p99']:>7.1f} "
            f"{r['get_p99']:>7.1f} {r['lag_p99']:>6.1f} {r['errors']:>5} {r['accepted']:>6} {lost:>4} {dup:>4} "
            f"{r['unannounced_rows']:>5} {r['stray_messages']:>5}  gen {cpu['generator']:.0f}% api {cpu['api']:.0f}% "
            f"pg {cpu['postgres']:.0f}% moto {cpu['moto']:.0f}% machine {cpu['machine']:.0f}%"
            + (f"  errors {r['error_kinds']}" if r["errors"] else "")
            + (f"  resent on a new connection: {r['reconnects']}" if r["reconnects"] else "")
            + (f"  API log: {r['log']}" if r["log"] else ""))


HEADER = (f"{'runtime':<9} {'N':>2} {'rate':>5} {'achvd':>7} {'p50':>6} {'p95':>7} {'p99':>7} {'max':>7} "
          f"{'POSTp99':>7} {'GETp99':>7} {'lag99':>6} {'errs':>5} {'202s':>6} {'lost':>4} {'dup':>4} {'unann':>5} "
          f"{'stray':>5}  CPU (% of one core)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="50,100,200", help="requests per second, comma-separated")
    parser.add_argument("--duration", type=float, default=60, help="seconds per rate")
    parser.add_argument("--processes", default="1,2", help="API processes, comma-separated counts")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--baseline", metavar="REF", help="also serve REF's runtime/, alternating")
    parser.add_argument("--json", metavar="FILE", help="write every result to FILE too")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the API processes and moto on the way out
    migrate(args.database_url)
    trees: list[tuple[str, str | None]] = [("current", None)]
    if args.baseline:
        trees.insert(0, (f"{args.baseline[:9]}", baseline_tree(args.baseline)))
    results = []
    print(f"{os.cpu_count()} CPUs; latencies in ms from the scheduled send; lag = the generator's own delay; "
          "lost = 202s without a row or a message; dup = IDs answered twice or messages received twice; unann = "
          "rows no 202 announced (the client gave up at 30 s); stray = their messages", flush=True)
    print(HEADER, flush=True)
    with moto_server() as endpoint:
        sqs = boto3.client("sqs")
        moto = moto_pid(endpoint)
        for processes in [int(p) for p in args.processes.split(",")]:
            for rate in [float(r) for r in args.rates.split(",")]:
                for label, path in trees:
                    result = run_one(label, processes, rate, args.duration, args.database_url, sqs, moto, path)
                    results.append(result)
                    print(report(result), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    medians = statistics.median(r["p99"] for r in results)
    print(f"median p99 over all runs: {medians:.1f} ms")


if __name__ == "__main__":
    main()
