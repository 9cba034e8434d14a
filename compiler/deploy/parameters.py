"""A deploy's parameter values: images named by service (--image), the rest given (--param) or kept from the
deployed stack, checked against the template's constraints before CloudFormation sees them."""

from __future__ import annotations

import re
from typing import Any

from ..build import Compiled
from .aws import DeployError, StackInfo


def image_parameters(compiled: Compiled, images: dict[str, str]) -> dict[str, str]:
    """--image SERVICE=URI -> the parameter that holds that image."""
    out = {}
    for service, uri in images.items():
        if service == "runtime":
            out["RuntimeImage"] = uri
            continue
        match = next((s for s in compiled.plan.services if s.name == service), None)
        if match is None:
            raise DeployError(f"--image {service}=...: no service '{service}' (services: "
                              f"{', '.join(s.name for s in compiled.plan.services)}, or 'runtime')")
        if match.role is not None:
            raise DeployError(f"--image {service}=...: '{service}' runs the runtime image, shared with the other "
                              f"runtime roles; use --image runtime=URI")
        out[match.image_parameter] = uri
    return out


def resolve_parameters(template: dict[str, Any], given: dict[str, str],
                       previous: StackInfo | None) -> list[dict[str, Any]]:
    """Given values win. Otherwise images follow the spec (their defaults), and any other parameter keeps the
    deployed value, so a certificate or VPC set once is not lost on the next apply."""
    declared = template.get("Parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise DeployError(f"unknown parameter(s) {', '.join(unknown)}; the template has: {', '.join(sorted(declared))}")
    out: list[dict[str, Any]] = []
    missing = []
    for name, spec in sorted(declared.items()):
        if name in given:
            out.append({"ParameterKey": name, "ParameterValue": given[name]})
        elif (previous is not None and name in previous.parameters and not name.endswith("Image")
              and _allowed(spec, previous.parameters[name])):
            out.append({"ParameterKey": name, "UsePreviousValue": True})
        elif "Default" not in spec:
            missing.append(name)
    if missing:
        raise DeployError("parameters to provide: " + ", ".join(missing) + " (--param NAME=VALUE)")
    return out


def _allowed(spec: dict[str, Any], value: str) -> bool:
    """Whether a deployed value still fits the template's constraint (prod's CertificateArn may no longer be
    empty): if not, it is a parameter to provide, named before CloudFormation rejects the change set."""
    pattern = spec.get("AllowedPattern")
    return pattern is None or re.fullmatch(pattern, value) is not None
