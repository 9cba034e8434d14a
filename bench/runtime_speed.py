"""Runtime figures, run by hand (issue 5):

    python bench/runtime_speed.py [--executions 300] [--database-url URL]

- worker throughput: executions per second of a trivial one-step (transform) workflow, one poll-mode worker
  process with concurrency 4, SQS on a local moto server;
- once mode: median time from process start to exit for one execution (what a Pipe-started task costs);
- the scheduler handler's import time, against the bare interpreter, both medians.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3

from flowbuilder.runtime import executions
from flowbuilder.runtime.db.models import Execution, Workflow
from flowbuilder.runtime.db.session import migrate, sessions
from flowbuilder.runtime.queue import Queue

TRIVIAL = {"steps": [{"type": "transform", "name": "double", "expression": "input.n"}]}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _timed(cmd: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executions", type=int, default=300)
    parser.add_argument("--database-url", default=f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    args = parser.parse_args()
    port = _port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    aws = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(aws)
    try:
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="bench", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        migrate(args.database_url)
        factory = sessions(args.database_url)
        with factory.begin() as session:
            workflow = Workflow(name="trivial", version=1, definition=TRIVIAL)
            session.add(workflow)
        queue = Queue(queue_url, sqs)
        ids = [executions.create(factory, workflow, {"n": i}, None)[0].id for i in range(args.executions)]
        for execution_id in ids:
            executions.send(factory, queue, execution_id)
        env = {**os.environ, "FLOWBUILDER_DATABASE_URL": args.database_url, "FLOWBUILDER_QUEUE_URL": queue_url,
               "FLOWBUILDER_WORKER_CONCURRENCY": "4", "FLOWBUILDER_POLL_WAIT": "1"}
        start = time.perf_counter()
        worker = subprocess.Popen([sys.executable, "-m", "flowbuilder.runtime.worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            with factory() as session:
                done = session.query(Execution).filter(Execution.state == "succeeded").count()
            if done == len(ids):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        print(f"poll mode: {len(ids)} executions in {elapsed:.1f} s = {len(ids) / elapsed:.1f} executions/s "
              f"(one process, concurrency 4, includes process start-up; {Path(args.database_url).suffix or 'db'})")

        once_ids = [executions.create(factory, workflow, {"n": i}, None)[0].id for i in range(7)]
        times = []
        for execution_id in once_ids:
            begin = time.perf_counter()
            subprocess.run([sys.executable, "-m", "flowbuilder.runtime.worker"], check=True,
                           env={**env, "FLOWBUILDER_WORKER_MODE": "once", "FLOWBUILDER_EXECUTION_ID": execution_id},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - begin)
        print(f"once mode: start to exit, median {statistics.median(times) * 1000:.0f} ms over {len(times)} runs")
    finally:
        moto.terminate()
    bare = _timed([sys.executable, "-c", "pass"], dict(os.environ), 11)
    handler = _timed([sys.executable, "-c", "import flowbuilder.runtime.scheduler"], dict(os.environ), 11)
    api = _timed([sys.executable, "-c", "import fastapi"], dict(os.environ), 11)
    print(f"scheduler handler import: median {handler:.0f} ms (bare interpreter {bare:.0f} ms; "
          f"'import fastapi' alone {api:.0f} ms, which the handler does not pay)")


if __name__ == "__main__":
    main()
