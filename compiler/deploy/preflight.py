"""Pre-flight: before apply creates a change set, what the stack needs that must exist already. Every image in
ECR (its tag or digest), every SSM parameter and Secrets Manager secret the spec references (the database URL's
too), the certificate (issued, in the stack's region) and the bootstrap bucket when the template is uploaded.
One small function per check, each returning its problems as lines; `problems` runs them all, so one run
says everything to fix (apply: exit 1 with nothing created; diff: warnings).

A reference the deployer may not read is a problem too: apply would deploy tasks that then fail to start.
Secrets Manager secrets are described, not read: their values never enter fbc. Images in another region's
registry are not checked (this region's clients cannot see them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ..emit import MAX_INLINE_BYTES
from ..scalars import ECR_IMAGE
from .aws import Aws, DeployError, StackInfo, error_code
from .operations import Target, asset_bucket_name
from .parameters import IMAGE_SUFFIX, check_given, plan_parameters, with_default_network
from .switch import Switch, profile_switch

Check = Callable[[], list[str]]
_MISSING = {"ParameterNotFound", "ResourceNotFoundException", "RepositoryNotFoundException",
            "ImageNotFoundException", "NoSuchBucket", "404", "NotFound"}
_SSM_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:(?P<region>[a-z0-9-]+):\d{12}:parameter(?P<name>/.+)$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:secret:.+$")


@dataclass(frozen=True)
class Prepared:
    """What apply and diff know before a change set: the parameters given (with the default VPC's when the
    template needs a network and none is given or kept), the profile switch if any, and the pre-flight's
    problems."""

    given: dict[str, str]
    switch: Switch | None
    problems: list[str]


def prepare(aws: Aws, target: Target, given: dict[str, str], bucket: str | None, say: Callable[[str], None], *,
            strict: bool, check: bool = True) -> Prepared:
    """The steps before a change set, in order: the deployed stack, its network, its profile, the checks.
    `strict` (apply): a network that cannot be found is an error; diff warns and compares anyway."""
    plan = target.compiled.plan
    found = aws.cloudformation.describe(target.stack_name)
    deployed = found if found is not None and found.status != "REVIEW_IN_PROGRESS" else None
    check_given(target.template, given)  # a wrong --param first, as before
    try:
        given = with_default_network(aws, plan.region, target.template, given, deployed, say)
    except DeployError as exc:
        if strict:
            raise
        say(f"warning: {exc}")  # diff: the comparison goes on; apply would stop here
    switch = None if deployed is None else profile_switch(aws, target.stack_name, plan.profile, target.template,
                                                          deployed)
    if not check:
        return Prepared(given, switch, [])
    deployed_template = aws.cloudformation.template(deployed.stack_id) if deployed is not None else None
    secrets = [ref for _, ref in plan.runtime_secrets] + [ref for s in plan.services for _, ref in s.secrets]
    found_problems = problems(aws, plan.region, secrets, values(target.template, given, deployed, deployed_template),
                              len(target.body.encode()), bucket)
    return Prepared(given, switch, found_problems)


def values(template: dict[str, Any], given: dict[str, str], deployed: StackInfo | None,
           deployed_template: dict[str, Any] | None) -> dict[str, str]:
    """The value of each parameter apply would deploy: given, kept from the stack, or the template's Default."""
    sent, _ = plan_parameters(template, given, deployed, deployed_template)
    out = {name: str(spec["Default"]) for name, spec in template.get("Parameters", {}).items() if "Default" in spec}
    for item in sent:
        name = item["ParameterKey"]
        out[name] = deployed.parameters[name] if item.get("UsePreviousValue") and deployed else item["ParameterValue"]
    return out


def problems(aws: Aws, region: str, secrets: list[str], parameters: dict[str, str], size: int,
             bucket: str | None) -> list[str]:
    """Every check's problems, in one list (empty: ready to deploy)."""
    checks: list[Check] = [
        lambda: images(aws, region, [v for k, v in sorted(parameters.items()) if k.endswith(IMAGE_SUFFIX)]),
        lambda: references(aws, region, [*secrets, *_database_url(parameters)]),
        lambda: certificate(aws, region, parameters.get("CertificateArn", "")),
        lambda: template_bucket(aws, region, size, bucket)]
    return [line for check in checks for line in check()]


def _database_url(parameters: dict[str, str]) -> Iterator[str]:
    """The external database's URL reference (ultra): the secret when one is given, else the SSM parameter."""
    if parameters.get("DatabaseUrlSecretArn"):
        yield parameters["DatabaseUrlSecretArn"]
    elif parameters.get("DatabaseUrlParameter"):
        yield parameters["DatabaseUrlParameter"]


def _why(exc: ClientError) -> str:
    code = error_code(exc)
    return "not found" if code in _MISSING else f"not readable ({code})"


def images(aws: Aws, region: str, uris: list[str]) -> list[str]:
    """Each ECR image exists: its repository, and the tag or digest in it."""
    out = []
    ecr = aws.client("ecr")
    for uri in sorted(set(uris)):
        found = ECR_IMAGE.match(uri)
        if found is None or found.group("region") != region or not found.group("ref"):
            continue  # a public registry, another region, or no tag (latest): nothing this region can tell
        ref = found.group("ref")
        image = {"imageDigest": ref[1:]} if ref.startswith("@") else {"imageTag": ref[1:]}
        try:
            aws.call(ecr.describe_images, registryId=found.group("account"), repositoryName=found.group("repository"),
                     imageIds=[image])
        except ClientError as exc:
            what = {"RepositoryNotFoundException": f"no repository {found.group('repository')}",
                    "ImageNotFoundException": f"no image {ref[1:]} in {found.group('repository')}"}.get(
                error_code(exc), _why(exc))
            out.append(f"image {uri}: {what} (push it first)")
    return out


def references(aws: Aws, region: str, refs: list[str]) -> list[str]:
    """Each SSM parameter (a name or an ARN) can be read and each Secrets Manager secret exists."""
    out = []
    for ref in sorted(set(refs)):
        ssm_arn, secret = _SSM_ARN.match(ref), _SECRET_ARN.match(ref)
        arn = ssm_arn or secret
        if arn is not None and arn.group("region") != region:
            continue  # another region's: this region's clients cannot see it
        try:
            if secret:
                found = aws.call(aws.client("secretsmanager").describe_secret, SecretId=ref)
                if found.get("DeletedDate"):
                    out.append(f"secret {ref}: scheduled for deletion (restore it: aws secretsmanager restore-secret)")
                continue
            name = ssm_arn.group("name") if ssm_arn else ref
            aws.call(aws.client("ssm").get_parameter, Name=name, WithDecryption=False)
        except ClientError as exc:
            kind = "secret" if secret else "SSM parameter"
            out.append(f"{kind} {ref}: {_why(exc)}" + (" (create it first)" if _why(exc) == "not found" else ""))
    return out


def certificate(aws: Aws, region: str, arn: str) -> list[str]:
    """The HTTPS certificate, if any, is in the stack's region and issued."""
    if not arn:
        return []
    parts = arn.split(":")
    if len(parts) > 3 and parts[3] != region:
        return [f"certificate {arn}: in {parts[3]}, but the stack deploys to {region} (a load balancer's must be "
                f"in its own region)"]
    try:
        status = aws.call(aws.client("acm").describe_certificate, CertificateArn=arn)["Certificate"]["Status"]
    except ClientError as exc:
        return [f"certificate {arn}: {_why(exc)}"]
    return [] if status == "ISSUED" else [f"certificate {arn}: {status}, not ISSUED (validate it in ACM first)"]


def template_bucket(aws: Aws, region: str, size: int, bucket: str | None) -> list[str]:
    """The bucket a template over the inline limit is uploaded to exists."""
    if size <= MAX_INLINE_BYTES:
        return []
    name = bucket or asset_bucket_name(aws, region)
    try:
        aws.call(aws.client("s3").head_bucket, Bucket=name)
    except ClientError as exc:
        return [f"bucket {name}: {_why(exc)}; the template is {size} bytes, over the {MAX_INLINE_BYTES}-byte inline "
                f"limit: run `fbc bootstrap` once, or pass --bucket"]
    return []
