"""What every verb shares: the exit codes, the options that name a spec, and the one error mapper."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.util import resolve_name
from typing import Any, NoReturn, TypeVar

import click

from ..profiles import BUILTIN

EXIT_INVALID = 1  # the spec is invalid; diff: there are differences; a deploy's outcome: failed, refused, declined
EXIT_USAGE = 2  # usage, input and environment: flags, files, credentials, region, AWS unreachable
EXIT_INTERNAL = 3  # a bug

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"fbc: {message}", err=True)
    sys.exit(code)


# --- errors ---------------------------------------------------------------------------------------------------

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


def _is(exc: Exception, module: str, name: str) -> bool:
    """isinstance(exc, module.name), asking only modules already loaded: a verb cannot raise an error of a
    module it never imported, so telling needs no import (fbc validate stays free of boto3 and troposphere)."""
    kind = getattr(sys.modules.get(resolve_name(module, __package__)), name, None)
    return isinstance(kind, type) and isinstance(exc, kind)


def _explained(exc: Exception, failed: int) -> tuple[str, int] | None:
    """One line and an exit code for an error the user can act on; None for a bug, which main reports."""
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
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
    stderr when `failed` is not 1 (diff's stdout is the diff), then `fbc: <spec>: <undone>`, and exit
    `failed`; what the verb could not do (a resource limit, a refused deploy, AWS's answer) is one line that
    exits `failed`; a usage or I/O error is one line that exits 2."""
    from ..diagnostics import Invalid, format_text

    try:
        yield
    except Invalid as exc:
        click.echo(format_text(exc.diagnostics), err=failed != EXIT_INVALID)
        if undone:
            fail(f"{spec_file}: {undone}", failed)
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


def spec_options(*, profile: bool = True, env: bool = True, optional: bool = False) -> Callable[[F], F]:
    """-f/--file, --profile and --env, the same for every verb that reads a spec. `optional` (validate): no
    default profile or environment; without them validate checks the base spec and every environment."""
    chosen: list[Callable[[F], F]] = [
        click.option("-f", "--file", "spec_file", default="flowbuilder.yaml", show_default=True,
                     type=click.Path(dir_okay=False), help="The spec.")]
    if profile:
        chosen.append(click.option(
            "--profile", default=None if optional else "standard", show_default=not optional,
            metavar="|".join((*BUILTIN, "PATH")), help=("Also run the checks this profile implies." if optional else
                                                 "How the spec becomes AWS resources.")))
    if env:
        chosen.append(click.option(
            "--env", "environment", default=None if optional else "dev", show_default=not optional, metavar="NAME",
            help=("Validate the spec as merged for this environment (default: base and every environment)."
                  if optional else "Environment: selects the spec's and the profile's overlays; the stack is "
                                   "<app>-<env>.")))
    return options(*chosen)
