from __future__ import annotations

import gc

# Start-up (SQLAlchemy's ORM and PostgreSQL dialect, psycopg, pydantic's models, the first connection) allocates
# tens of thousands of objects that live as long as the process; the cyclic collector would walk them over and over
# while they are made, and the interpreter's last collections at the exit would tear them all down. It is off from
# here until the worker has connected (`ready`), then what survived is frozen (never walked again, nor torn down at
# the exit) and collection resumes. A one-step once-mode task: 370 ms instead of 500 (bench/cold_paths.py).
gc.disable()

import logging  # noqa: E402
import sys  # noqa: E402

from ..config import Settings  # noqa: E402
from .modes import once, poll  # noqa: E402


def ready() -> None:
    gc.freeze()
    gc.enable()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    try:
        return once(settings, ready) if settings.worker_mode == "once" else poll(settings, ready)
    finally:
        gc.enable()  # whatever happened before `ready`


if __name__ == "__main__":
    sys.exit(main())
