"""The `fbc` command: click verbs only. Each parses flags, calls one function, prints, sets the exit code.

Exit codes (README's table): 0 valid or done, 1 invalid or the deploy's outcome (diff: differences), 2 usage,
input or environment (click's own usage errors are 2 too; a deadline passed), 3 a bug, 130 and 143 stopped by
SIGINT or SIGTERM, 141 stdout's reader went away. The verbs are grouped by what they work on (spec_verbs: a
spec on this machine; deploy_verbs: a stack in AWS); common holds the options they share, the one error
mapper and what a stopped run does. Imports are deferred into the verbs so `fbc validate` loads nothing it
does not use (no boto3, no troposphere) and starts fast.
"""

from __future__ import annotations

import itertools
import os
import sys
from typing import Any

import click

from ..github.verb import comment
from . import common
from .common import EXIT_INTERNAL, Stopped, broken_pipe, install_signal_handlers, json_error, report, stopped
from .deploy_verbs import apply, bootstrap, destroy, diff
from .local_verbs import explain, schedules
from .operate_verbs import logs, run, secret, status
from .spec_verbs import build, cost, graph, init, schema, up, validate


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        """The verb, with what click would otherwise say its own way: a broken pipe ends quietly (click exits
        1), and with --format json a usage error is also the JSON object on stdout."""
        args = list(ctx.args)  # the verb's, before click takes them
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            sys.exit(broken_pipe())
        except click.ClickException as exc:
            if common.RUN.json or _asks_json(args):
                exc.show()
                json_error(exc.format_message(), exc.exit_code)
                sys.exit(exc.exit_code)
            raise


def _asks_json(args: list[str]) -> bool:
    """--format json among a verb's arguments that did not parse (so its options are not known)."""
    return "--format=json" in args or ("--format", "json") in itertools.pairwise(args)


@click.group(name="fbc", cls=_Group,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="flowbuilder", prog_name="fbc")  # looked up only when asked
def cli() -> None:
    """Flow Builder compiler: flowbuilder.yaml -> AWS CloudFormation."""
    common.begin()


for _verb in (validate, build, up, cost, graph, schema, init, diff, apply, destroy, status, bootstrap, schedules,
              explain, logs, run, secret):
    cli.add_command(_verb)
cli.add_command(comment)  # GitHub Actions: the pull request's comment (compiler/github)


def main() -> None:
    install_signal_handlers()
    try:
        cli.main(prog_name="fbc")
    except Stopped as exc:  # a signal or the deadline: clean up, say what is left
        sys.exit(stopped(exc))
    except KeyboardInterrupt:  # only where SIGINT has Python's own handler still
        sys.exit(130)
    except Exception as exc:  # never a traceback for the user; FBC_DEBUG=1 shows it
        if os.environ.get("FBC_DEBUG"):
            raise
        report(f"internal error: {type(exc).__name__}: {exc} (FBC_DEBUG=1 shows the traceback; please report it)",
               EXIT_INTERNAL)
        sys.exit(EXIT_INTERNAL)
