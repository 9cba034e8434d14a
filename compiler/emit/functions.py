"""Web services as Lambda functions behind function URLs (ultra): nothing runs, nothing is billed, while
no request comes. The runtime API runs through its Mangum handler; any other container image must include
the AWS Lambda Web Adapter, which forwards Lambda events to the port the image serves on."""

from __future__ import annotations

from typing import Any

from troposphere import GetAtt, Join, Ref, awslambda, logs

from .. import contract
from ..plan import ServicePlan
from .stack import Stack, role, statement
from .tasks import image_parameter, image_pull_statements, queue_statements, role_environment, secret_statements

TIMEOUT = 60  # seconds; a function URL waits at most 15 minutes, an API request should not
LAMBDA_MIN_MEMORY = 128


def lambda_environment(stack: Stack, service: ServicePlan) -> dict[str, Any]:
    """The container environment, with secret references for the runtime to resolve (Lambda has no
    Secrets field) and the Web Adapter's settings for images that are not the runtime."""
    env = dict(role_environment(stack, service, on_lambda=True))
    runtime = list(stack.plan.runtime_secrets) if service.role else []
    for name, reference in runtime + list(service.secrets):
        env[f"{contract.SECRET_REF_PREFIX}{name}"] = reference
    if service.role is None and service.port is not None:
        env["AWS_LWA_PORT"] = str(service.port)
        env["AWS_LWA_READINESS_CHECK_PATH"] = service.health_check
    return env


def function(stack: Stack, service: ServicePlan, statements: list[dict[str, Any]], *, timeout: int,
             handler: str | None, extra_env: dict[str, Any] | None = None, logical: str | None = None,
             vpc: awslambda.VPCConfig | None = None) -> Any:
    """A container-image Lambda with its own log group and a role limited to `statements`."""
    stem = logical or f"{service.id}"
    log_group = stack.add(logs.LogGroup(f"{stem}LogGroup",
                                        RetentionInDays=stack.plan.policy.monitoring.log_retention_days))
    execution = role(stack, f"{stem}FunctionRole", "lambda.amazonaws.com", [
        statement("WriteLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [GetAtt(log_group, "Arn")]),
        *[s for s in image_pull_statements(service) if s["Sid"] != "EcrLogin"],
        *statements,
    ])
    env = lambda_environment(stack, service) if extra_env is None else extra_env
    props: dict[str, Any] = {
        "PackageType": "Image", "Code": awslambda.Code(ImageUri=image_parameter(stack, service)),
        "Role": GetAtt(execution, "Arn"), "MemorySize": max(service.memory, LAMBDA_MIN_MEMORY),
        "Timeout": timeout, "Architectures": ["x86_64"],
        "LoggingConfig": awslambda.LoggingConfig(LogGroup=Ref(log_group)),
        "Environment": awslambda.Environment(Variables=dict(sorted(env.items()))),
    }
    if vpc is not None:
        props["VpcConfig"] = vpc
    if handler is not None:
        props["ImageConfig"] = awslambda.ImageConfig(EntryPoint=contract.LAMBDA_ENTRYPOINT, Command=[handler])
    return stack.add(awslambda.Function(f"{stem}Function", **props))


def emit(stack: Stack) -> None:
    if stack.plan.policy.web.serving != "function-url":
        return
    assert stack.database is not None
    for service in stack.plan.web_services:
        statements = queue_statements(stack, service)
        references = ([ref for _, ref in stack.plan.runtime_secrets] if service.role else [])
        references += [ref for _, ref in service.secrets]
        statements += _read_secrets(references)
        if service.role is not None:
            statements += stack.database.read_statements
        handler = contract.LAMBDA_HANDLERS["api"] if service.role == "api" else None
        fn = function(stack, service, statements, timeout=TIMEOUT, handler=handler)
        stack.functions[service.name] = fn
        auth = "NONE" if service.public else "AWS_IAM"
        url = stack.add(awslambda.Url(f"{service.id}FunctionUrl", TargetFunctionArn=GetAtt(fn, "Arn"),
                                      AuthType=auth, InvokeMode="BUFFERED"))
        if service.public:
            # Since October 2025 a public URL needs both permissions; the second only through the URL.
            stack.add(awslambda.Permission(f"{service.id}FunctionUrlPermission", Action="lambda:InvokeFunctionUrl",
                                           FunctionName=Ref(fn), Principal="*", FunctionUrlAuthType="NONE"))
            stack.add(awslambda.Permission(f"{service.id}FunctionInvokePermission", Action="lambda:InvokeFunction",
                                           FunctionName=Ref(fn), Principal="*", InvokedViaFunctionUrl=True))
        path = stack.plan.api_base_path(service).strip("/")
        stack.output(f"{service.id}ServiceUrl", GetAtt(url, "FunctionUrl"),
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
