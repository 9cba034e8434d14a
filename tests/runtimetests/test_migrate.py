"""Concurrent cold starts (issue 12, item 4): processes that start at once against a fresh database all migrate
it without error, the schema is upgraded exactly once, and a database already at the head is left alone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from flowbuilder.runtime.db.session import HEAD_REVISION

PROCESSES = 6

# Each child imports everything first (in the race Alembic and the models too, and it connects, so that the
# migrations themselves collide rather than imports and connections), leaves a file saying it is ready, waits
# for the go file, migrates, and then says whether it imported Alembic.
CHILD = """
import pathlib, sys, time
from flowbuilder.runtime.db.session import engine, migrate
url, mode, ready, go = sys.argv[1:]
if mode == "race":
    import logging; logging.basicConfig(level=logging.INFO, format="%(message)s")  # Alembic's "Running upgrade"
    import alembic.command, alembic.config, flowbuilder.runtime.db.models
    engine(url).connect().close()  # a connection in the pool: no connecting after the go either
pathlib.Path(ready).touch()
deadline = time.monotonic() + 60
while not pathlib.Path(go).exists() and time.monotonic() < deadline:
    time.sleep(0.001)
migrate(url)
print("alembic imported" if "alembic" in sys.modules else "alembic not imported", flush=True)
"""


def start_together(url: str, mode: str, directory: Path) -> list[tuple[int, str]]:
    """Start PROCESSES children, let them go at the same moment once all are ready: (exit code, output)."""
    go = directory / f"{mode}-go"
    ready = [directory / f"{mode}-ready-{n}" for n in range(PROCESSES)]
    children = [subprocess.Popen([sys.executable, "-c", CHILD, url, mode, str(ready[n]), str(go)], text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for n in range(PROCESSES)]
    try:
        deadline = time.monotonic() + 60
        while not all(path.exists() for path in ready):
            dead = [child for child in children if child.poll() is not None]
            assert not dead, f"a child ended before it was ready:\n{dead[0].communicate()[0]}"
            assert time.monotonic() < deadline, "not ready in 60 s"
            time.sleep(0.01)
        go.touch()
        results = []
        for child in children:
            output, _ = child.communicate(timeout=120)
            results.append((child.returncode, output))
        return results
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def versions(url: str) -> tuple[list[str], list[str]]:
    """(the rows of alembic_version, the tables)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
            return rows, inspect(connection).get_table_names()
    finally:
        engine.dispose()


def test_concurrent_cold_starts_migrate_once_and_a_repeat_is_a_no_op(database_url: str, tmp_path: Path) -> None:
    results = start_together(database_url, "race", tmp_path)
    failed = [output for code, output in results if code != 0]
    assert not failed, f"{len(failed)} of {PROCESSES} failed; the first:\n{failed[0] if failed else ''}"
    upgraders = [output for _, output in results if "Running upgrade" in output]
    assert len(upgraders) == 1, [output for _, output in results]  # the others waited and found the head
    rows, tables = versions(database_url)
    assert rows == [HEAD_REVISION]
    assert {"alembic_version", "workflows", "executions"} <= set(tables)

    # Again, at the head: every process takes the fast path (no lock, no Alembic) and nothing changes.
    again = start_together(database_url, "fast", tmp_path)
    assert [code for code, _ in again] == [0] * PROCESSES, [output for _, output in again]
    assert all(output.strip() == "alembic not imported" for _, output in again), [output for _, output in again]
    assert versions(database_url) == (rows, tables)


OPEN = """
import pathlib, sys, time
from flowbuilder.runtime.db.session import engine
url, go = sys.argv[1:]
while not pathlib.Path(go).exists():
    time.sleep(0.001)
engine(url).connect().close()
"""


def test_processes_opening_a_fresh_sqlite_file_at_once_all_connect(tmp_path: Path) -> None:
    """Switching a new SQLite file to WAL takes a lock SQLite does not wait for: before the retry, about one
    round in ten of eight processes opening a fresh file at once had one refused with "database is locked"."""
    for round_ in range(5):
        go = tmp_path / f"go-{round_}"
        url = f"sqlite:///{tmp_path}/fresh-{round_}.db"
        children = [subprocess.Popen([sys.executable, "-c", OPEN, url, str(go)], text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(8)]
        time.sleep(1.0)  # most have imported and wait for the go
        go.touch()
        outputs = [(child.wait(timeout=60), child.communicate()[0]) for child in children]
        assert all(code == 0 for code, _ in outputs), next(output for code, output in outputs if code)
