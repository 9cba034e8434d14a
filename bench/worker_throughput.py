"""Worker throughput on PostgreSQL (issue 17), run by hand:

    python bench/worker_throughput.py [--executions 400] [--concurrency 1,4,16] [--processes 1,2] [--step transform]
                                      [--baseline REF] [--database-url URL]

For each (processes, concurrency): a fresh queue on a local moto server is prefilled with N executions of a
one-step workflow (`transform`: a JMESPath step, no I/O; `http`: a POST to a local 127.0.0.1 server answering at
once), then that many `python -m flowbuilder.runtime.worker` processes (poll mode, as ECS runs them, with
FLOWBUILDER_WORKER_CONCURRENCY) consume it. Executions/s is measured between 10% and 90% succeeded (the steady
state: no process start-up, no tail); the time from the processes' start to the last success is printed too.

What bounds it: CPU of the workers, PostgreSQL's backends for this database and moto, and the whole machine's
(percent of one core); and, from one process running executions through the engine with libpq's protocol
trace, the exact database round trips per execution, by statement. `--baseline REF` runs REF's runtime/
too (git archive, first on PYTHONPATH), alternating, so each figure has its baseline from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from load_api import DEFAULT_URL, Cpu, baseline_tree, moto_pid, moto_server
from sqlalchemy import Engine, create_engine, event, text

from flowbuilder.runtime.db.session import migrate

TRANSFORM = {"steps": [{"type": "transform", "name": "echo", "expression": "input"}]}


def http_definition(url: str) -> dict[str, Any]:
    return {"steps": [{"type": "http", "name": "call", "method": "POST", "url": url, "body": {"n": "input.n"}}]}


@contextmanager
def local_endpoint() -> Iterator[str]:
    """A 127.0.0.1 server answering every POST with {"ok": true} at once."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/echo"
    finally:
        server.shutdown()


def insert_queued(db: Engine, definition: dict[str, Any], count: int, prefix: str) -> tuple[str, list[str]]:
    """A workflow and `count` queued executions of it, in one transaction: (workflow ID, execution IDs)."""
    workflow_id = str(uuid.uuid4())
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with db.begin() as connection:
        connection.execute(text("INSERT INTO workflows (id, name, version, definition, created_at, updated_at) "
                                "VALUES (:id, :name, 1, :d, now(), now())"),
                           {"id": workflow_id, "name": f"{prefix}-{workflow_id[:8]}", "d": json.dumps(definition)})
        connection.execute(
            text("INSERT INTO executions (id, workflow_id, workflow_version, definition, state, input, attempts, "
                 "enqueued_at, created_at, updated_at) VALUES (:id, :w, 1, :d, 'queued', :i, 0, now(), now(), now())"),
            [{"id": i, "w": workflow_id, "d": json.dumps(definition), "i": json.dumps({"n": n})}
             for n, i in enumerate(ids)])
    return workflow_id, ids


def prefill(db: Engine, sqs: Any, definition: dict[str, Any], count: int) -> tuple[str, str]:
    """(workflow ID, queue URL): N queued executions, each sent once."""
    queue_url = sqs.create_queue(QueueName=f"tp-{uuid.uuid4().hex[:8]}",
                                 Attributes={"VisibilityTimeout": "90"})["QueueUrl"]
    workflow_id, ids = insert_queued(db, definition, count, "tp")
    for start in range(0, count, 10):
        sqs.send_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(n), "MessageBody": i} for n, i in enumerate(ids[start:start + 10])])
    return workflow_id, queue_url


def run_one(label: str, processes: int, concurrency: int, count: int, database_url: str, sqs: Any, moto: int,
            definition: dict[str, Any], pythonpath: str | None) -> dict[str, Any]:
    db = create_engine(database_url)
    database = database_url.rsplit("/", 1)[1]
    workflow_id, queue_url = prefill(db, sqs, definition, count)
    env = {**os.environ, "FLOWBUILDER_DATABASE_URL": database_url, "FLOWBUILDER_QUEUE_URL": queue_url,
           "FLOWBUILDER_WORKER_CONCURRENCY": str(concurrency), "FLOWBUILDER_ROLE": "worker",
           "FLOWBUILDER_HTTP_ALLOWLIST": "127.0.0.1/32"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath

    def backends() -> list[int]:
        with db.connect() as connection:
            return list(connection.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = :d "
                                                "AND pid <> pg_backend_pid()"), {"d": database}))

    done_query = text("SELECT count(*) FROM executions WHERE workflow_id = :w AND state = 'succeeded'")
    start = time.monotonic()
    workers = [subprocess.Popen([sys.executable, "-m", "flowbuilder.runtime.worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(processes)]
    cpu = Cpu({"worker": [w.pid for w in workers], "moto": [moto]}, backends)
    marks: dict[int, float] = {}
    try:
        with db.connect() as connection:
            while True:
                done = int(connection.scalar(done_query, {"w": workflow_id}) or 0)
                connection.rollback()
                now = time.monotonic()
                if done >= count * 0.1 and 10 not in marks:
                    marks[10] = now
                    cpu.begin()
                if done >= count * 0.9 and 90 not in marks:
                    marks[90] = now
                    used = cpu.end()
                if done >= count:
                    break
                if now - start > 600:
                    raise RuntimeError(f"{done} of {count} succeeded after 600 s")
                time.sleep(0.02)
        total = time.monotonic() - start
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
    with db.connect() as connection:
        failed = connection.scalar(text("SELECT count(*) FROM executions WHERE workflow_id = :w "
                                        "AND state <> 'succeeded'"), {"w": workflow_id})
    db.dispose()
    sqs.delete_queue(QueueUrl=queue_url)
    return {"label": label, "processes": processes, "concurrency": concurrency, "executions": count,
            "rate": 0.8 * count / (marks[90] - marks[10]), "total_s": total,
            "not_succeeded": failed, "cpu": used}


def round_trips(database_url: str, definition: dict[str, Any], count: int) -> tuple[float, dict[str, float]]:
    """Run `count` executions through the engine in this process with libpq's protocol trace on every
    connection: (round trips per execution, statements by text). Each Query (simple protocol: BEGIN, COMMIT,
    pool pings) or Sync (extended protocol: one statement) the client sends waits for the server's answer."""
    from flowbuilder.runtime.db.session import sessions
    from flowbuilder.runtime.workflows import engine as runner

    factory = sessions(database_url)
    bind = factory.kw["bind"]
    trace = tempfile.NamedTemporaryFile(prefix="libpq-", suffix=".trace", delete=False)  # noqa: SIM115

    def traced(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.pgconn.trace(trace.fileno())
        dbapi_connection.pgconn.set_trace_flags(1 | 2)  # suppress timestamps, regress mode

    db = create_engine(database_url)
    _, ids = insert_queued(db, definition, count, "rt")
    db.dispose()
    bind.dispose()  # new connections from here on, each traced
    event.listen(bind, "connect", traced)
    try:
        for execution_id in ids:
            outcome = runner.run(factory, execution_id, "bench", runner.Limits(allowlist=()))
            assert outcome == "succeeded", outcome
        bind.dispose()
    finally:
        event.remove(bind, "connect", traced)
    lines: list[str] = []
    for line in Path(trace.name).read_text(errors="replace").splitlines():
        if line[:2] in ("F\t", "B\t") or not lines:
            lines.append(line)
        else:  # a statement's text goes on over lines of its own (SQLAlchemy's SQL has newlines)
            lines[-1] += " " + line
    Path(trace.name).unlink()
    statements: Counter[str] = Counter()
    prepared: dict[str, str] = {}  # statement name ("" unnamed) -> text: psycopg prepares a statement run often
    pending = ""
    for line in lines:
        parts = line.split("\t")
        if len(parts) < 3 or parts[0] != "F":
            continue
        quoted = re.findall(r'"((?:[^"]|"")*)"', parts[3]) if len(parts) > 3 else []
        if parts[2] == "Query":
            statements[_short(quoted[0] if quoted else "")] += 1
        elif parts[2] == "Parse" and len(quoted) > 1:
            prepared[quoted[0]] = quoted[1]
        elif parts[2] == "Bind" and len(quoted) > 1:
            pending = prepared.get(quoted[1], "")
        elif parts[2] == "Sync":
            statements[_short(pending)] += 1
    return sum(statements.values()) / count, {k: v / count for k, v in statements.items()}


def _short(statement: str) -> str:
    """A statement's kind and table: `UPDATE executions`, `SELECT now()`, `BEGIN`, `;` (the pool's ping)."""
    words = statement.split()
    if not words:
        return "?"
    head = words[0].upper()
    if head == "SELECT" and " FROM " in statement.upper():
        table = re.search(r" FROM (\w+)", statement, re.IGNORECASE)
        return f"SELECT {table.group(1) if table else ''}".strip()
    if head == "UPDATE":
        return f"UPDATE {words[1]}"
    if head in ("INSERT", "DELETE"):
        return f"{head} {words[2]}"
    return statement[:40]


def report(r: dict[str, Any]) -> str:
    cpu = r["cpu"]
    return (f"{r['label']:<9} {r['processes']:>2} {r['concurrency']:>4} {r['rate']:>8.1f} {r['total_s']:>7.1f} "
            f"{r['not_succeeded']:>5}  worker {cpu['worker']:.0f}% "
            f"pg {cpu['postgres']:.0f}% moto {cpu['moto']:.0f}% bench {cpu['generator']:.0f}% "
            f"machine {cpu['machine']:.0f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executions", type=int, default=400)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--step", choices=["transform", "http"], default="transform")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each configuration (medians printed)")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--baseline", metavar="REF", help="also run REF's runtime/, alternating")
    parser.add_argument("--trips-only", action="store_true", help="print the round trips only")
    args = parser.parse_args()
    migrate(args.database_url)
    trees: list[tuple[str, str | None]] = [("current", None)]
    if args.baseline:
        trees.insert(0, (args.baseline[:9], baseline_tree(args.baseline)))
    with local_endpoint() as endpoint:
        definition = TRANSFORM if args.step == "transform" else http_definition(endpoint)
        trips, statements = round_trips(args.database_url, definition, 20)
        summary = f"{trips:.1f} = " + ", ".join(f"{n:g} {s}" for s, n in sorted(statements.items(),
                                                                                  key=lambda kv: -kv[1]))
        if args.trips_only:
            print(summary)
            return
        print(f"database round trips per execution of a one-step {args.step} workflow (engine.run, libpq trace):",
              flush=True)
        for label, path in trees:
            if path is None:
                line = summary
            else:  # the same count, in a process that imports REF's runtime
                line = subprocess.run([sys.executable, __file__, "--trips-only", "--step", args.step,
                                       "--database-url", args.database_url], env={**os.environ, "PYTHONPATH": path},
                                      capture_output=True, text=True, check=True).stdout.strip()
            print(f"  {label:<9} {line}", flush=True)
        print(f"{os.cpu_count()} CPUs", flush=True)
        print(f"{'runtime':<9} {'P':>2} {'conc':>4} {'exec/s':>8} {'total':>7} {'fail':>5}  "
              "CPU (% of one core, 10%..90%)", flush=True)
        results: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
        with moto_server() as moto_url:
            sqs = boto3.client("sqs")
            moto = moto_pid(moto_url)
            for processes in [int(p) for p in args.processes.split(",")]:
                for concurrency in [int(c) for c in args.concurrency.split(",")]:
                    for _ in range(args.repeat):
                        for label, path in trees:
                            result = run_one(label, processes, concurrency, args.executions, args.database_url,
                                             sqs, moto, definition, path)
                            results.setdefault((label, processes, concurrency), []).append(result)
                            print(report(result), flush=True)
    if args.repeat > 1:
        print("medians:")
        for (label, processes, concurrency), runs in results.items():
            print(f"{label:<9} {processes:>2} {concurrency:>4} "
                  f"{statistics.median(r['rate'] for r in runs):>8.1f} executions/s")


if __name__ == "__main__":
    main()
