"""Web services as Lambda functions behind function URLs (ultra): nothing runs, nothing is billed, while
no request comes. The runtime API runs through its Mangum handler; any other container image must include
the AWS Lambda Web Adapter, which forwards Lambda events to the port the image serves on."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from troposphere import GetAtt, Join, Ref, awslambda, ec2

from .. import contract
from ..naming import FunctionSuffix, service_id
from ..plan import ServicePlan
from . import manifest
from .manifest import Node
from .stack import Stack, log_group, role, skip_checks, statement
from .tasks import image_parameter, image_pull_statements, queue_statements, role_environment, secret_statements

TIMEOUT = 60  # seconds; a function URL waits at most 15 minutes, an API request should not
LAMBDA_MIN_MEMORY = 128
# checkov findings every function here accepts, with why.
FUNCTION_TRADE_OFFS = (
    ("CKV_AWS_115", "No reserved concurrency: AWS refuses a reservation that would leave the account below its "
                    "minimum unreserved concurrency (new accounts start with 10 in all), so it would break first "
                    "deploys; a runaway is bounded by the function's timeout and shows in its Errors metric."),
    ("CKV_AWS_116", "No DeadLetterConfig: function URLs invoke synchronously (the caller gets the error), and the "
                    "scheduler's asynchronous failures go to its on-failure destination (SchedulerInvokeConfig), "
                    "which keeps the error with the event."),
    ("CKV_AWS_173", "The environment holds no secret, only references the runtime resolves at start; Lambda "
                    "encrypts it at rest with its AWS-managed key, and a customer key would cost USD 1/month."),
)


def lambda_environment(stack: Stack, service: ServicePlan) -> dict[str, Any]:
    """The container environment, with secret references for the runtime to resolve (Lambda has no
    Secrets field) and the Web Adapter's settings for images that are not the runtime."""
    env = dict(role_environment(stack, service, on_lambda=True))
    for name, reference in service.secrets:
        env[f"{contract.SECRET_REF_PREFIX}{name}"] = reference
    if service.role is None and service.port is not None:
        env["AWS_LWA_PORT"] = str(service.port)
        env["AWS_LWA_READINESS_CHECK_PATH"] = service.health_check
    return env


Namer = Callable[[FunctionSuffix], str]  # a function's logical IDs: a web service's, or the scheduler's


def function(stack: Stack, service: ServicePlan, statements: list[dict[str, Any]], *, node: Node, name: Namer,
             timeout: int, handler: str | None, extra_env: dict[str, Any] | None = None,
             vpc: awslambda.VPCConfig | None = None) -> Any:
    """A container-image Lambda serving `node`, with its own log group and a role limited to `statements`."""
    logs_group = log_group(stack, name("LogGroup"), node)
    execution = role(stack, name("FunctionRole"), node, "lambda.amazonaws.com", [
        statement("WriteLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [GetAtt(logs_group, "Arn")]),
        *[s for s in image_pull_statements(service) if s["Sid"] != "EcrLogin"],
        *statements,
    ])
    env = lambda_environment(stack, service) if extra_env is None else extra_env
    props: dict[str, Any] = {
        "PackageType": "Image", "Code": awslambda.Code(ImageUri=image_parameter(stack, service)),
        "Role": GetAtt(execution, "Arn"), "MemorySize": max(service.memory, LAMBDA_MIN_MEMORY),
        "Timeout": timeout, "Architectures": ["x86_64"],
        "LoggingConfig": awslambda.LoggingConfig(LogGroup=Ref(logs_group)),
        "Environment": awslambda.Environment(Variables=dict(sorted(env.items()))),
    }
    if vpc is not None:
        props["VpcConfig"] = vpc
    if handler is not None:
        props["ImageConfig"] = awslambda.ImageConfig(EntryPoint=contract.LAMBDA_ENTRYPOINT, Command=[handler])
    fn = stack.add(awslambda.Function(name("Function"), **props), node=node, role="function")
    skip_checks(fn, *FUNCTION_TRADE_OFFS)
    if vpc is None:
        skip_checks(fn, ("CKV_AWS_117", "Outside any VPC: it needs nothing private (no RDS here) and reaches AWS "
                                        "APIs directly; inside a VPC without a NAT it could reach none of them."))
    else:  # join_vpc added the network-interface statement to `statements`
        skip_checks(execution, ("CKV_AWS_111", "Only the VPC-access actions are unscoped: Lambda's network-interface "
                                               "management has no resource-level permissions, so AWS's own "
                                               "AWSLambdaVPCAccessExecutionRole grants them on '*'."))
    return fn


def join_vpc(stack: Stack, node: Node, name: Namer, label: str,
             statements: list[dict[str, Any]]) -> awslambda.VPCConfig | None:
    """A runtime function joins the VPC when the database is private there (RDS); it then reaches AWS APIs
    through the NAT. Adds the network-interface permissions it needs to `statements`."""
    assert stack.network is not None and stack.database is not None
    if not stack.plan.decisions.functions_in_vpc:
        return None
    assert stack.database.client_security_group is not None  # RDS: the database is in the VPC
    # ENI management has no resource-level permissions for Describe*: AWS offers nothing narrower than "*"
    # (as its managed AWSLambdaVPCAccessExecutionRole).
    statements.append(statement("ManageNetworkInterfaces", [
        "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"], ["*"]))
    group = stack.add(ec2.SecurityGroup(
        name("SecurityGroup"), GroupDescription=f"{label} function: AWS APIs and the database",
        VpcId=stack.network.vpc_id,
        SecurityGroupEgress=[ec2.SecurityGroupRule(IpProtocol="tcp", FromPort=443, ToPort=443,
                                                   CidrIp="0.0.0.0/0", Description="AWS APIs over HTTPS")]),
        node=node, role="network")
    return awslambda.VPCConfig(SecurityGroupIds=[Ref(group), stack.database.client_security_group],
                               SubnetIds=stack.network.task_subnets)


def emit(stack: Stack) -> None:
    if stack.plan.decisions.web_on_ecs:
        return
    assert stack.database is not None
    for service in stack.plan.web_services:
        node, name = manifest.service(service.name), partial(service_id, service)
        statements = queue_statements(stack, service)
        statements += _read_secrets([ref for _, ref in service.secrets])
        if service.role is not None:
            statements += stack.database.read_statements
        handler = contract.LAMBDA_HANDLERS["api"] if service.role == "api" else None
        vpc = join_vpc(stack, node, name, service.id, statements) if service.role is not None else None
        fn = function(stack, service, statements, node=node, name=name, timeout=TIMEOUT, handler=handler, vpc=vpc)
        stack.functions[service.name] = fn
        auth = "NONE" if service.public else "AWS_IAM"
        url = stack.add(awslambda.Url(service_id(service, "FunctionUrl"), TargetFunctionArn=GetAtt(fn, "Arn"),
                                      AuthType=auth, InvokeMode="BUFFERED"), node=node, role="ingress")
        if service.public:
            skip_checks(url, ("CKV_AWS_258", f"Public by the spec (services.{service.name}.public): a browser or API "
                                             "client calls it directly; the API checks a bearer key on every "
                                             "request. Non-public services get AWS_IAM."))
            # Since October 2025 a public URL needs both permissions; the second only through the URL.
            stack.add(awslambda.Permission(service_id(service, "FunctionUrlPermission"),
                                           Action="lambda:InvokeFunctionUrl", FunctionName=Ref(fn), Principal="*",
                                           FunctionUrlAuthType="NONE"), node=node, role="ingress")
            stack.add(awslambda.Permission(service_id(service, "FunctionInvokePermission"),
                                           Action="lambda:InvokeFunction", FunctionName=Ref(fn), Principal="*",
                                           InvokedViaFunctionUrl=True), node=node, role="ingress")
        path = stack.plan.api_base_path(service).strip("/")
        stack.output(service_id(service, "ServiceUrl"), GetAtt(url, "FunctionUrl"),
                     f"Function URL of {service.name}" + (f" (it answers under /{path})." if path else "."))
        if service.role == "api" and not service.public:  # a public API's URL is CloudFront's (cdn.py)
            stack.output("ApiUrl", Join("", [GetAtt(url, "FunctionUrl"), path]) if path else GetAtt(url, "FunctionUrl"),
                         "Base URL of the Flow Builder API (function URL, IAM authentication).")


def _read_secrets(references: list[str]) -> list[dict[str, Any]]:
    """Lambda reads secrets itself: GetParameter (not the plural ECS uses) and GetSecretValue."""
    statements = secret_statements("ReadSecrets", references)
    for item in statements:
        item["Action"] = sorted({*item["Action"], *(["ssm:GetParameter"] if "ssm:GetParameters" in item["Action"]
                                                    else [])})
    return statements
