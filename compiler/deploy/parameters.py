"""A deploy's parameter values: images named by service (--image), the rest given (--param) or kept from the
deployed stack, checked against the spec's and the template's rules before CloudFormation sees them, and
compared with the deployed values so that diff and apply can show every change.

The image rule: the deployed image stays until `--image` or an edit of the spec's image changes it. An image
parameter not given is kept (UsePreviousValue) while the spec's image, the parameter's Default, is the one
the stack was deployed with; once the spec names another image, that one is deployed. Nothing else moves an
image, so an apply of an unrelated change never rolls code back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..build import Compiled
from ..scalars import ECR_IMAGE, IMAGE_PATTERN, PATTERN_HELP
from .aws import Aws, DeployError, StackInfo
from .diff import ValueChange

IMAGE_SUFFIX = "Image"  # RuntimeImage, <Service>Image: naming.py's suffix of image parameters
_VERSION = re.compile(r"v?(\d+(?:\.\d+)*)(?:[-+_].*)?")


def image_parameters(compiled: Compiled, images: dict[str, str]) -> dict[str, str]:
    """--image SERVICE=URI -> the parameter that holds that image, each URI checked as the spec's would be."""
    out = {}
    for service, uri in images.items():
        if service == "runtime":
            _check_image(f"--image {service}={uri}", uri, compiled.plan.runtime_image, "spec.runtime.image")
            out["RuntimeImage"] = uri
            continue
        match = next((s for s in compiled.plan.services if s.name == service), None)
        if match is None:
            raise DeployError(f"--image {service}=...: no service '{service}' (services: "
                              f"{', '.join(s.name for s in compiled.plan.services)}, or 'runtime')")
        if match.role is not None:
            raise DeployError(f"--image {service}=...: '{service}' runs the runtime image, shared with the other "
                              f"runtime roles; use --image runtime=URI")
        _check_image(f"--image {service}={uri}", uri, match.image, f"spec.services.{service}.image")
        out[match.image_parameter] = uri
    return out


def _check_image(flag: str, uri: str, spec_image: str, where: str) -> None:
    """An image reference; when the spec's image is in ECR, one of the same repository: its task and execution
    roles may pull only from it (emit/tasks.py), so another repository would deploy and then fail to pull."""
    if len(uri) > 512 or re.fullmatch(IMAGE_PATTERN, uri) is None:
        raise DeployError(f"{flag}: {PATTERN_HELP[IMAGE_PATTERN]}")
    spec = ECR_IMAGE.match(spec_image)
    if spec is None:
        return  # a public registry: no repository rule
    repository = spec_image[: spec.start("ref")] if spec.group("ref") else spec_image
    if not uri.startswith((f"{repository}:", f"{repository}@")):
        raise DeployError(f"{flag}: not an image of {repository}, the spec's repository (its task roles may pull "
                          f"only from it; to move, change {where})")


def check_given(template: dict[str, Any], given: dict[str, str]) -> None:
    """Every given parameter is the template's and fits its constraint (AllowedPattern, AllowedValues): said
    here, by diff as by apply, before CloudFormation (or an emulator that checks nothing) sees it."""
    declared = template.get("Parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise DeployError(f"unknown parameter(s) {', '.join(unknown)}; the template has: {', '.join(sorted(declared))}")
    for name, value in sorted(given.items()):
        spec = declared[name]
        if not _allowed(spec, value):
            rule = spec.get("ConstraintDescription") or f"match {spec['AllowedPattern']}"
            raise DeployError(f"--param {name}={value}: must be {rule}")
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            raise DeployError(f"--param {name}={value}: must be one of {', '.join(map(str, spec['AllowedValues']))}")


def plan_parameters(template: dict[str, Any], given: dict[str, str], previous: StackInfo | None,
                    previous_template: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """(the parameters to send, the names still to provide). Given values win. Otherwise a deployed value is
    kept, so a certificate or VPC set once is not lost on the next apply; an image is kept too unless the
    spec's image (the parameter's Default) differs from the one `previous_template` was deployed with."""
    declared = template.get("Parameters", {})
    before = (previous_template or {}).get("Parameters", {})
    out: list[dict[str, Any]] = []
    missing = []
    for name, spec in sorted(declared.items()):
        spec_moved = (name.endswith(IMAGE_SUFFIX) and previous_template is not None
                      and before.get(name, {}).get("Default") != spec.get("Default"))
        if name in given:
            out.append({"ParameterKey": name, "ParameterValue": given[name]})
        elif (previous is not None and name in previous.parameters and not spec_moved
              and _allowed(spec, previous.parameters[name])):
            out.append({"ParameterKey": name, "UsePreviousValue": True})
        elif "Default" not in spec:
            missing.append(name)
    return out, missing


def resolve_parameters(template: dict[str, Any], given: dict[str, str], previous: StackInfo | None,
                       previous_template: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The parameters to send with a change set: checked, and every one without a default provided."""
    check_given(template, given)
    out, missing = plan_parameters(template, given, previous, previous_template)
    if missing:
        raise DeployError("parameters to provide: " + ", ".join(missing) + " (--param NAME=VALUE)")
    return out


def value_changes(template: dict[str, Any], parameters: list[dict[str, Any]],
                  deployed: StackInfo) -> list[ValueChange]:
    """What the parameters sent would change in the deployed stack: given values and defaults against the
    deployed values (kept ones change nothing); an image going back to an older version tag is marked."""
    sent = {p["ParameterKey"]: p for p in parameters}
    changes = []
    for name, spec in sorted(template.get("Parameters", {}).items()):
        item = sent.get(name)
        if item is not None and item.get("UsePreviousValue"):
            continue
        new = item["ParameterValue"] if item is not None else spec.get("Default")
        if new is None:
            continue  # still to provide: apply says so
        old = deployed.parameters.get(name)
        if not same_value(old, str(new)):
            back = older_tag(old, str(new)) if old is not None and name.endswith(IMAGE_SUFFIX) else None
            changes.append(ValueChange(name, old, str(new), back))
    return changes


def same_value(deployed: str | None, given: str) -> bool:
    """A parameter given again with the value it has. List parameters compare item by item: CloudFormation
    returns "a,b" (moto's server returns the repr "['a', 'b']", which reads the same here)."""
    if deployed is None:
        return False

    def items(value: str) -> list[str]:
        return [v.strip().strip("'\"") for v in value.strip().removeprefix("[").removesuffix("]").split(",")]

    return items(deployed) == items(given)


def older_tag(old: str, new: str) -> tuple[str, str] | None:
    """(old tag, new tag) when `new` is the same repository at a lower version tag ('3.0.0' -> '2.9.9',
    'v2' -> 'v1.5'); None when it is not, or when the tags do not compare (git SHAs, names, digests)."""
    before, after = _tag(old), _tag(new)
    if before is None or after is None or before[0] != after[0]:
        return None
    old_version, new_version = _VERSION.fullmatch(before[1]), _VERSION.fullmatch(after[1])
    if old_version is None or new_version is None:
        return None
    a, b = ([int(n) for n in v.group(1).split(".")] for v in (old_version, new_version))
    width = max(len(a), len(b))
    a, b = a + [0] * (width - len(a)), b + [0] * (width - len(b))
    return (before[1], after[1]) if b < a else None


def _tag(uri: str) -> tuple[str, str] | None:
    """(repository, tag) of an image reference with a tag; None for a digest or no tag."""
    if "@" in uri:
        return None
    repository, colon, tag = uri.rpartition(":")
    return (repository, tag) if colon and "/" not in tag else None


def _allowed(spec: dict[str, Any], value: str) -> bool:
    """Whether a value fits the template's constraint (a deployed one too: prod's CertificateArn may no longer
    be empty, and is then a parameter to provide, named before CloudFormation rejects the change set)."""
    pattern = spec.get("AllowedPattern")
    return pattern is None or re.fullmatch(pattern, value) is not None


# --- the network of a stack that runs in an existing VPC (ultra): the account's default VPC unless told ------

NETWORK_PARAMETERS = ("VpcId", "SubnetIds")


def with_default_network(aws: Aws, region: str, template: dict[str, Any], given: dict[str, str],
                         deployed: StackInfo | None, say: Callable[[str], None]) -> dict[str, str]:
    """`given`, plus VpcId and SubnetIds from the account's default VPC when the template asks for them and
    neither --param nor the deployed stack (whose values later applies keep) gives them. The subnets are the
    VPC's public ones (a route to an internet gateway), one per availability zone; what is picked is said."""
    declared = template.get("Parameters", {})
    kept = deployed.parameters if deployed is not None else {}
    needed = [n for n in NETWORK_PARAMETERS if n in declared and n not in given and n not in kept]
    if not needed:
        return given
    vpc = given.get("VpcId") or kept.get("VpcId") or _default_vpc(aws, region)
    picked = {**given, "VpcId": vpc} if "VpcId" in needed else dict(given)
    subnets: list[tuple[str, str]] = []
    if "SubnetIds" in needed:
        subnets = public_subnets(aws, vpc)
        if not subnets:
            raise DeployError(f"VPC {vpc} has no public subnet (none routes to an internet gateway): pass "
                              f"--param SubnetIds=subnet-...,subnet-...")
        picked["SubnetIds"] = ",".join(subnet for subnet, _ in subnets)
    where = ", ".join(f"{subnet} ({zone})" for subnet, zone in subnets)
    say(("network: the default VPC " if "VpcId" in needed else "network: VPC ") + vpc
        + (f", public subnets {where}" if subnets else "")
        + (" (only one availability zone has a public subnet)" if len(subnets) == 1 else "")
        + "; later applies keep them (--param VpcId=... --param SubnetIds=... to choose others)")
    return picked


def _default_vpc(aws: Aws, region: str) -> str:
    vpcs = aws.call(aws.client("ec2").describe_vpcs, Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise DeployError(f"no default VPC in {region}: pass --param VpcId=vpc-... --param "
                          f"SubnetIds=subnet-...,subnet-... (or create one: aws ec2 create-default-vpc)")
    return str(vpcs[0]["VpcId"])


def public_subnets(aws: Aws, vpc: str) -> list[tuple[str, str]]:
    """(subnet, availability zone) of the VPC's subnets whose route table (their own, else the VPC's main one)
    routes to an internet gateway: one per zone (the zone's default subnet first), sorted by zone."""
    ec2 = aws.client("ec2")
    by_vpc = [{"Name": "vpc-id", "Values": [vpc]}]
    tables = [t for page in aws.pages(ec2.describe_route_tables, Filters=by_vpc) for t in page["RouteTables"]]
    public = {t["RouteTableId"] for t in tables
              if any(str(r.get("GatewayId", "")).startswith("igw-") for r in t.get("Routes", []))}
    main = next((a["RouteTableId"] for t in tables for a in t.get("Associations", []) if a.get("Main")), None)
    own = {a["SubnetId"]: a["RouteTableId"] for t in tables for a in t.get("Associations", []) if a.get("SubnetId")}
    chosen: dict[str, str] = {}
    subnets = [s for page in aws.pages(ec2.describe_subnets, Filters=by_vpc) for s in page["Subnets"]]
    for subnet in sorted(subnets, key=lambda s: (s["AvailabilityZone"], not s.get("DefaultForAz"), s["SubnetId"])):
        if own.get(subnet["SubnetId"], main) in public:
            chosen.setdefault(subnet["AvailabilityZone"], subnet["SubnetId"])
    return [(subnet, zone) for zone, subnet in sorted(chosen.items())]
