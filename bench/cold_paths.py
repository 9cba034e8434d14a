"""Cold paths of the runtime image's roles against their floors, run by hand (issue 17):

    python bench/cold_paths.py [--runs 15] [--database-url URL] [--path api,api-query,scheduler,worker]
                               [--python VENV/bin/python] [--orm-floor] [--gc-floor] [--to-exit]

Each path is a new process, timed as the platform pays it: a Lambda path (api, api-query, scheduler) from its start
to its response (the process then ends with os._exit: Lambda freezes a sandbox after the response and never waits
for the interpreter's shutdown, which costs a cold process 50-90 ms), the worker from its start to its exit (the
task ends with the process). The floors end the same way as their path. --to-exit times every process to its
exit, shutdown included.

- api: the API on Lambda: import flowbuilder.runtime.api.lambda_handler, then the first GET /healthz through
  handler() with a function-URL event (migrated database, queue URL set, no AWS call needed);
- api-query: the same with an authenticated GET /workflows as the first request (the routes, their models and
  a database query);
- scheduler: import flowbuilder.runtime.scheduler, then handler({"type": "sweep"}) with nothing to sweep;
- worker: `python -m flowbuilder.runtime.worker` in once mode for one one-step (transform) execution, to exit.

Each path's floor is a new process importing the third-party packages the path cannot do without (their import
is what it costs to have them; the path adds its own code and its work). The floor and the path alternate run
by run, so the machine's noise falls on both; the medians, their ratio and the peak RSS of the path are printed.
The database defaults to a migrated SQLite file; pass a PostgreSQL URL (what the ultra profile runs against)
to include psycopg's real use. --python runs the processes with another interpreter: a venv built as the
image is (tests/test_image_env.py's commands) measures what the image runs, without the dev venv's editable
finder and compiler packages.

The scheduler and the worker pause the cyclic garbage collector while they start (scheduler.py, worker/__main__.py):
--gc-floor also times each floor with the collector paused, to tell that saving from the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from flowbuilder.runtime import executions
from flowbuilder.runtime.db.models import Workflow
from flowbuilder.runtime.db.session import migrate, sessions

TRIVIAL = {"steps": [{"type": "transform", "name": "double", "expression": "input.n"}]}

def _event(path: str, headers: dict[str, str]) -> dict[str, Any]:
    """A Lambda function URL's event (payload 2.0) for GET `path`."""
    host = "abc.lambda-url.us-east-1.on.aws"
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
            "headers": {"host": host, "user-agent": "bench", **headers}, "isBase64Encoded": False,
            "requestContext": {"accountId": "anonymous", "apiId": "abc", "domainName": host, "domainPrefix": "abc",
                               "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1",
                                        "sourceIp": "127.0.0.1", "userAgent": "bench"},
                               "requestId": "r", "routeKey": "$default", "stage": "$default",
                               "time": "29/Nov/2026:14:55:21 +0000", "timeEpoch": 0}}


def _api(event: dict[str, Any]) -> str:
    return f"""
import json
from flowbuilder.runtime.api.lambda_handler import handler
response = handler(json.loads({json.dumps(event)!r}), None)
assert response["statusCode"] == 200, response
"""


SCRIPTS = {"api": _api(_event("/healthz", {})),
           "api-query": _api(_event("/workflows", {"authorization": "Bearer bench"}))}
SCRIPTS["scheduler"] = """
from flowbuilder.runtime.scheduler import handler
assert handler({"type": "sweep"}) == {"swept": 0}
"""

# The floors: the third-party packages each path needs. The API: FastAPI (with pydantic and Starlette),
# Mangum, SQLAlchemy and its PostgreSQL driver, boto3 (SQS, secrets). The scheduler: SQLAlchemy, the driver,
# boto3. The worker: SQLAlchemy, the driver, boto3 (a released execution is sent again), pydantic (the
# definition) and jmespath (transform steps).
FLOORS = {
    "api": "import boto3, sqlalchemy, psycopg, fastapi, mangum",
    "api-query": "import boto3, sqlalchemy, psycopg, fastapi, mangum",
    "scheduler": "import boto3, sqlalchemy, psycopg",
    "worker": "import boto3, sqlalchemy, psycopg, pydantic, jmespath",
}
# What `import sqlalchemy` leaves out and the runtime cannot: the ORM, and on PostgreSQL the dialect's package
# (which imports every PostgreSQL DBAPI's dialect module, asyncpg's and so asyncio among them). --orm-floor
# measures this second floor too.
ORM = ", sqlalchemy.orm, sqlalchemy.dialects.postgresql.psycopg"
GC = "import gc; gc.disable(); "
LAMBDA_PATHS = {"api", "api-query", "scheduler"}
RESPONDED = "\nimport os; os._exit(0)"  # after the response: what follows is not on a Lambda invocation's path


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds from start to exit, and the child's peak RSS in MiB."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}):\n{err.decode(errors='replace')}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--path", default="api,api-query,scheduler,worker")
    parser.add_argument("--orm-floor", action="store_true", help="also time the floor with " + ORM.lstrip(", "))
    parser.add_argument("--gc-floor", action="store_true", help="also time the floor(s) with the collector paused")
    parser.add_argument("--to-exit", action="store_true",
                        help="time the Lambda paths and their floors to the process's exit, not to the response")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter of the measured processes and floors, e.g. a venv built as the image "
                             "is (tests/test_image_env.py); this one only prepares the database")
    args = parser.parse_args()
    work = tempfile.mkdtemp()
    url = args.database_url or f"sqlite:///{work}/bench.db"
    migrate(url)
    factory = sessions(url)
    with factory.begin() as session:
        workflow = Workflow(name=f"cold-{os.getpid()}-{time.time_ns()}", version=1, definition=TRIVIAL)
        session.add(workflow)
    # No AWS call is made on these paths: the queue URL and region are set, as in the templates, so a client
    # made at import or start would be made (and paid) here too.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWBUILDER_")}
    env.update({"FLOWBUILDER_DATABASE_URL": url, "FLOWBUILDER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                "FLOWBUILDER_API_KEYS": "bench", "PYTHONDONTWRITEBYTECODE": "0"})
    py = args.python
    print(f"{py}, {args.runs} runs each, alternating with the floor; database "
          f"{url.split(':', 1)[0]}; Lambda paths timed to {'the exit' if args.to_exit else 'the response'}")
    for path in args.path.split(","):
        end = RESPONDED if path in LAMBDA_PATHS and not args.to_exit else ""
        floor_times, orm_times, path_times, rss = [], [], [], []
        gc_times: dict[str, list[float]] = {"": [], ORM: []}
        for _ in range(args.runs):
            floor_times.append(_run([py, "-c", FLOORS[path] + end], env)[0])
            if args.orm_floor:
                orm_times.append(_run([py, "-c", FLOORS[path] + ORM + end], env)[0])
            for extra in ("", ORM) if args.gc_floor else ():
                if extra == "" or args.orm_floor:
                    gc_times[extra].append(_run([py, "-c", GC + FLOORS[path] + extra + end], env)[0])
            if path == "worker":
                execution_id = executions.create(factory, workflow, {"n": 1}, None)[0].id
                elapsed, mib = _run([py, "-m", "flowbuilder.runtime.worker"],
                                    {**env, "FLOWBUILDER_WORKER_MODE": "once",
                                     "FLOWBUILDER_EXECUTION_ID": execution_id})
                with factory() as session:
                    from flowbuilder.runtime.db.models import Execution
                    state = session.get(Execution, execution_id)
                    assert state is not None and state.state == "succeeded", state and state.state
            else:
                elapsed, mib = _run([py, "-c", SCRIPTS[path] + end], env)
            path_times.append(elapsed)
            rss.append(mib)
        floor, measured = statistics.median(floor_times), statistics.median(path_times)
        print(f"{path:9} median {measured * 1000:4.0f} ms, floor ({FLOORS[path]}) {floor * 1000:4.0f} ms: "
              f"{measured / floor:.2f}x; peak RSS {statistics.median(rss):.0f} MiB")
        if orm_times:
            orm = statistics.median(orm_times)
            print(f"{'':9} floor{ORM} {orm * 1000:4.0f} ms: {measured / orm:.2f}x")
        for extra, times in gc_times.items():
            if times:
                paused = statistics.median(times)
                print(f"{'':9} floor{extra}, collector paused {paused * 1000:4.0f} ms: {measured / paused:.2f}x")


if __name__ == "__main__":
    main()
