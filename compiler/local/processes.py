"""Child processes and the one log stream they share, as docker compose shows it: `name | line`.

Children run in their own process group, so Ctrl-C reaches `fbc up` alone and it stops them in order (a
SIGTERM each, as ECS sends, then SIGKILL after the stop timeout). On Linux they also get SIGTERM if `fbc up`
itself is killed, so nothing is left holding a port.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TextIO

_COLOURS = (36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)  # loaded before fork

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return preexec


class Logs:
    """Lines from every component, prefixed and never interleaved mid-line."""

    def __init__(self, out: TextIO | None = None, colour: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.colour = (self.out.isatty() and not os.environ.get("NO_COLOR")) if colour is None else colour
        self.width = 9
        self._lock = threading.Lock()
        self._colours: dict[str, int] = {}

    def line(self, name: str, text: str) -> None:
        prefix = f"{name:<{self.width}} |"
        if self.colour:
            code = self._colours.setdefault(name.split("#")[0], _COLOURS[len(self._colours) % len(_COLOURS)])
            prefix = f"\x1b[{code}m{prefix}\x1b[0m"
        with self._lock:
            self.out.write(f"{prefix} {text.rstrip()}\n")
            self.out.flush()

    def pump(self, name: str, stream: IO[str]) -> threading.Thread:
        def copy() -> None:
            for text in stream:
                self.line(name, text)
            stream.close()

        thread = threading.Thread(target=copy, name=f"logs-{name}", daemon=True)
        thread.start()
        return thread


_PREEXEC = _die_with_parent()


class Child:
    """One supervised process whose output goes to the shared log under its name."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Logs, stdin: str | None = None) -> None:
        self.name = name
        self.process = subprocess.Popen(
            argv, env=env, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, process_group=0,
            preexec_fn=_PREEXEC)
        self._pump = logs.pump(name, self.process.stdout)  # type: ignore[arg-type]
        if stdin is not None:
            assert self.process.stdin is not None
            self.process.stdin.write(stdin)
            self.process.stdin.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def terminate(self) -> None:
        if self.running():
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float) -> int:
        """SIGTERM, then SIGKILL after `timeout` seconds; the exit code."""
        self.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._pump.join(5)
        return code


def stop_all(children: list[Child], timeout: float) -> None:
    """SIGTERM every child at once, then wait for each (together they get `timeout`, not each)."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        child.stop(max(0.1, deadline - time.monotonic()))
