"""The `fbc` command: click verbs only. Each parses flags, calls one function, prints, sets the exit code.

Exit codes: 0 valid, 1 invalid, 2 usage or I/O error (click's own usage errors are 2 too), 3 a bug. The verbs
are grouped by what they work on (spec_verbs: a spec on this machine; deploy_verbs: a stack in AWS); common
holds the options they share and the one error mapper. Imports are deferred into the verbs so `fbc validate`
loads nothing it does not use (no boto3, no troposphere) and starts fast.
"""

from __future__ import annotations

import os
import sys

import click

from .common import EXIT_INTERNAL
from .deploy_verbs import apply, bootstrap, destroy, diff, status
from .spec_verbs import build, cost, graph, init, schema, up, validate


@click.group(name="fbc", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="flowbuilder", prog_name="fbc")  # looked up only when asked
def cli() -> None:
    """Flow Builder compiler: flowbuilder.yaml -> AWS CloudFormation."""


for _verb in (validate, build, up, cost, graph, schema, init, diff, apply, destroy, status, bootstrap):
    cli.add_command(_verb)


def main() -> None:
    try:
        cli.main(prog_name="fbc")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # never a traceback for the user; FBC_DEBUG=1 shows it
        if os.environ.get("FBC_DEBUG"):
            raise
        click.echo(f"fbc: internal error: {type(exc).__name__}: {exc} (FBC_DEBUG=1 shows the traceback; "
                   f"please report it)", err=True)
        sys.exit(EXIT_INTERNAL)
