"""What every verb shares: the exit codes, the options that name a spec, the one error mapper, and what the run
does when it is stopped from outside (a signal or its deadline)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib.util import resolve_name
from typing import Any, NamedTuple, NoReturn, TypeVar

import click

from ..profiles import BUILTIN

# The exit codes, as README's table has them.
EXIT_INVALID = 1  # the spec is invalid; diff: there are differences; a deploy's outcome: failed, refused, declined
EXIT_USAGE = 2  # usage, input and environment: flags, files, credentials, region, AWS unreachable, a deadline
EXIT_INTERNAL = 3  # a bug
EXIT_BROKEN_PIPE = 141  # stdout's reader went away (fbc status | head -1): quiet, as a process SIGPIPE ends

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


# --- the run ----------------------------------------------------------------------------------------------------

class Stopped(BaseException):
    """The run was stopped from outside: a signal (exit 128 + its number) or the verb's deadline (exit 2). A
    BaseException, so that no `except Exception` on its way swallows it, nor click (which makes Ctrl-C's
    KeyboardInterrupt an "Aborted!" exit 1); main reports it (`stopped`)."""

    def __init__(self, why: str, code: int) -> None:
        super().__init__(why)
        self.why, self.code = why, code


@dataclass
class Run:
    """What the verb running tells main for the moments it cannot return: whether errors are also one JSON
    object on stdout, and the AWS connections it opened (their unexecuted change sets are deleted when it is
    stopped)."""

    json: bool = False
    connections: list[Any] = field(default_factory=list)
    stopping: bool = False


RUN = Run()


def begin() -> None:
    """A new invocation (tests run several in one process)."""
    global RUN
    RUN = Run()


def machine_readable(on: bool) -> None:
    """--format json: every exit path prints one JSON object on stdout ({"error": ..., "exit": n} on errors)."""
    RUN.json = on


def track(aws: T) -> T:
    """An AWS connection of this run, to clean up after if the run is stopped."""
    RUN.connections.append(aws)
    return aws


def report(message: str, code: int, **extra: Any) -> None:
    """An error's one line on stderr, and with --format json the object on stdout."""
    click.echo(f"fbc: {message}", err=True)
    if RUN.json:
        json_error(message, code, **extra)


def json_error(message: str, code: int, **extra: Any) -> None:
    click.echo(json.dumps({"error": message, "exit": code, **extra}, indent=2))


def fail(message: str, code: int = EXIT_USAGE, **extra: Any) -> NoReturn:
    report(message, code, **extra)
    sys.exit(code)


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM (how CI cancels a job) raise Stopped in the main thread, so a run cleans up and says
    what is left, then exits 130 or 143. A signal the parent ignores (a background job's Ctrl-C) stays ignored."""
    for number in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, _on_signal)


def _on_signal(number: int, _frame: Any) -> None:
    name = signal.Signals(number).name
    if RUN.stopping:  # a second signal while cleaning up: stop at once
        os.write(2, f"\nfbc: {name} again: stopped without cleaning up\n".encode())
        os._exit(128 + number)
    raise Stopped(f"interrupted ({name})", 128 + number)


class Deadline(NamedTuple):
    seconds: int
    text: str  # as given: 10m


def deadline_option(default: str) -> Callable[[F], F]:
    """--deadline: how long the verb may take in all, AWS's retries and waits included."""
    def parse(_ctx: click.Context, _param: click.Parameter, value: str) -> Deadline:
        from ..scalars import parse_duration

        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        if seconds <= 0:
            raise click.BadParameter("must be over 0")
        return Deadline(seconds, value)

    return click.option("--deadline", default=default, show_default=True, metavar="DURATION", callback=parse,
                        help="Give up after this long in all, saying what is left in AWS (exit 2): 90s, 10m, 2h.")


@contextmanager
def within(deadline: Deadline) -> Iterator[None]:
    """Stop the verb when its deadline passes: SIGALRM raises Stopped in the main thread, even in a socket
    read or a wait. (Where there is no SIGALRM, only AWS's timeouts bound the run.)"""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(*_: Any) -> None:
        raise Stopped(f"gave up after {deadline.text} (--deadline)", EXIT_USAGE)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, deadline.seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def stopped(exc: Stopped) -> int:
    """Main's answer to Stopped: delete the change sets this run created and did not execute (and the empty
    stack a first one made), say in one line what is left in AWS, and return the exit code."""
    RUN.stopping = True
    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, 0)
    said: list[str] = []
    for aws in RUN.connections:
        cf = vars(aws).get("cloudformation")  # only if the run used CloudFormation
        if cf is None:
            continue
        try:
            said += cf.abandon()
            said += cf.left()
        except Exception as problem:
            said.append(f"could not look at what is left ({problem}); fbc status tells")
    if not said and RUN.connections:
        said.append("nothing was changed in AWS")
    if exc.code != EXIT_USAGE and sys.stderr.isatty():
        click.echo(err=True)  # after the terminal's ^C
    report(exc.why + (f": {'; '.join(said)}" if said else ""), exc.code)
    return exc.code


def broken_pipe() -> int:
    """stdout's reader went away: nothing more can be said there, and nothing is said elsewhere (the final
    flush goes to /dev/null)."""
    with suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


# --- errors -------------------------------------------------------------------------------------------------

# Errors that mean what the verb could not do (exit 1, or 2 for diff), and errors of usage, input or
# environment (exit 2), besides OSError and ValueError, by (module, class).
_FAILURES = (("..emit", "LimitError"), ("..deploy.aws", "DeployError"))
_USAGE = (("..cost.prices", "Unpriced"), ("..diagram.render", "NoGraphviz"), ("..local.up", "UpError"),
          ("botocore.exceptions", "BotoCoreError"), ("..deploy.transport", "SetupError"))
# AWS's answers that are about the environment (credentials, permissions, throttling past every retry), not the
# deploy: exit 2.
_ENVIRONMENT_CODES = {
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
    "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch", "AuthFailure",
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}


def _is(exc: BaseException, module: str, name: str) -> bool:
    """isinstance(exc, module.name), asking only modules already loaded: a verb cannot raise an error of a
    module it never imported, so telling needs no import (fbc validate stays free of boto3 and troposphere)."""
    kind = getattr(sys.modules.get(resolve_name(module, __package__)), name, None)
    return isinstance(kind, type) and isinstance(exc, kind)


def _explained(exc: Exception, failed: int) -> tuple[str, int] | None:
    """One line and an exit code for an error the user can act on; None for a bug, which main reports, and
    for a broken pipe, which the group ends quietly."""
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, BrokenPipeError):
        return None
    if _is(exc, "botocore.exceptions", "ClientError"):
        error = getattr(exc, "response", {}).get("Error", {})
        code = error.get("Code")
        return f"AWS: {code}: {error.get('Message')}", EXIT_USAGE if code in _ENVIRONMENT_CODES else failed
    if _is(exc, "botocore.parsers", "ResponseParserError"):  # an endpoint answering in no AWS format
        return f"AWS endpoint error: {first}", EXIT_USAGE
    if any(_is(exc, module, name) for module, name in _FAILURES):  # LimitError before ValueError, its base
        return first, failed
    if isinstance(exc, (OSError, ValueError)) or any(_is(exc, module, name) for module, name in _USAGE):
        return first, EXIT_USAGE
    return None


@contextmanager
def reported(spec_file: str = "", undone: str = "", *, failed: int = EXIT_INVALID) -> Iterator[None]:
    """The one error mapper of every verb. A spec's errors print located (file:line:column) on stdout, or on
    stderr when `failed` is not 1 (diff's stdout is the diff) or with --format json, then
    `fbc: <spec>: <undone>`, and exit `failed`; what the verb could not do (a resource limit, a refused deploy,
    AWS's answer) is one line that exits `failed`; a usage, input or environment error is one line that exits
    2. With --format json each also prints {"error": ..., "exit": n} (and the spec's diagnostics) on stdout."""
    from ..diagnostics import Invalid, format_json, format_text

    try:
        yield
    except Invalid as exc:
        click.echo(format_text(exc.diagnostics), err=failed != EXIT_INVALID or RUN.json)
        message = f"{spec_file}: {undone}" if undone else f"{spec_file or 'the spec'}: invalid"
        if RUN.json:
            fail(message, failed, diagnostics=json.loads(format_json(exc.diagnostics))["diagnostics"])
        if undone:
            fail(message, failed)
        sys.exit(failed)
    except Exception as exc:
        explained = _explained(exc, failed)
        if explained is None:
            raise
        fail(*explained)


def write_output(path: str, text: str) -> None:
    """Write a file the user named; a failure names that file (not write_atomic's temporary one)."""
    from ..files import write_atomic

    try:
        write_atomic(path, text)
    except OSError as exc:
        raise OSError(f"{path}: {exc.strerror or exc}") from None


# --- options --------------------------------------------------------------------------------------------------

def options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several click options as one decorator, listed in the order --help shows them."""
    def apply(fn: F) -> F:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn
    return apply


class BadEnvironment(click.ClickException):
    """--env that is not a name: a usage error (exit 2), said as fbc says its errors."""

    exit_code = EXIT_USAGE

    def show(self, file: Any = None) -> None:
        click.echo(f"fbc: {self.format_message()}", err=True)


def check_environment(name: str) -> None:
    """validate's rule for --env (the spec's environments are names): one rule for every verb."""
    import re

    from ..scalars import NAME_PATTERN

    if not re.match(NAME_PATTERN, name):
        raise BadEnvironment(f"--env {name!r} is not a valid environment name (lowercase letters, digits, '-')")


def _environment_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        check_environment(value)
    return value


def chosen_profile(spec_file: str, environment: str | None, override: str | None) -> str:
    """The profile a verb uses (build.choose_profile: --profile, the spec's environment's, spec.profile,
    standard); when --profile overrides what the spec says, one line on stderr says so."""
    from ..profiles import choose_profile

    choice = choose_profile(spec_file, environment, override)
    if choice.note:
        click.echo(f"fbc: {choice.note}", err=True)
    return choice.ref


def spec_options(*, profile: bool = True, env: bool = True, optional: bool = False) -> Callable[[F], F]:
    """-f/--file, --profile and --env, the same for every verb that reads a spec; --env follows validate's rule
    for names in every verb. --profile has no default: the spec's profile is the default (chosen_profile).
    `optional` (validate): no default environment; without one validate checks the base spec and every
    environment."""
    chosen: list[Callable[[F], F]] = [
        click.option("-f", "--file", "spec_file", default="flowbuilder.yaml", show_default=True,
                     type=click.Path(dir_okay=False), help="The spec.")]
    if profile:
        chosen.append(click.option(
            "--profile", default=None, metavar="|".join((*BUILTIN, "PATH")),
            help=("Also run the checks this profile implies (default: the spec's profile)." if optional else
                  "How the spec becomes AWS resources, over the spec's own choice (spec.environments.<env>."
                  "profile, then spec.profile, then standard).")))
    if env:
        chosen.append(click.option(
            "--env", "environment", default=None if optional else "dev", show_default=not optional, metavar="NAME",
            callback=_environment_option,
            help=("Validate the spec as merged for this environment (default: base and every environment)."
                  if optional else "Environment: selects the spec's and the profile's overlays; the stack is "
                                   "<app>-<env>.")))
    return options(*chosen)
