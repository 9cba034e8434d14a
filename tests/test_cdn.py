"""Ultra's one origin: a CloudFront distribution in front of every public function URL (compiler/emit/cdn.py),
the API under its path on CloudFront and on its function URL, $0 while idle, cfn-lint clean."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from build_helpers import ENVIRONMENTS, SPECS, compiled, resources, template
from conftest import REPO
from flowbuilder.compiler import contract
from flowbuilder.compiler.build import compile_spec
from flowbuilder.compiler.cost.estimate import estimate
from flowbuilder.compiler.cost.prices import Prices, price_book
from flowbuilder.compiler.cost.usage import Usage
from flowbuilder.compiler.emit.cdn import ALL_VIEWER_EXCEPT_HOST_HEADER, CACHING_DISABLED

ALL_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}


def distribution(doc: dict[str, Any]) -> dict[str, Any]:
    (found,) = resources(doc, "AWS::CloudFront::Distribution").values()
    return found["Properties"]["DistributionConfig"]  # type: ignore[no-any-return]


def behaviours(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Path pattern -> behaviour; the default behaviour as "default"."""
    paths = {b["PathPattern"]: b for b in config.get("CacheBehaviors", [])}
    return {"default": config["DefaultCacheBehavior"], **paths}


def write_spec(tmp: Path, services: str) -> Path:
    spec = tmp / "flowbuilder.yaml"
    spec.write_text(f"""apiVersion: flowbuilder.dev/v1alpha1
kind: App
metadata: {{name: shop}}
spec:
  region: us-east-1
  runtime: {{image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/runtime:1}}
  queues:
    jobs: {{visibilityTimeout: 5m}}
  services:
{services}
    worker: {{type: worker, runtime: worker, queue: jobs, timeout: 5m}}
""", "utf-8")
    return spec


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_one_origin_per_public_function_url_the_root_service_by_default_the_api_under_its_path(env: str) -> None:
    doc = template("flow-builder", "ultra", env)
    config = distribution(doc)
    origins = {o["Id"]: o for o in config["Origins"]}
    assert set(origins) == {"ApiFunctionUrl", "FrontendFunctionUrl"}
    for origin_id, origin in origins.items():  # https://<id>.lambda-url.<region>.on.aws/ -> the domain
        assert origin["DomainName"] == {"Fn::Select": [2, {"Fn::Split": ["/", {"Fn::GetAtt": [origin_id,
                                                                                                "FunctionUrl"]}]}]}
        assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
        assert origin["CustomOriginConfig"]["OriginSSLProtocols"] == ["TLSv1.2"]
        assert origin["CustomOriginConfig"]["OriginReadTimeout"] == doc["Resources"]["ApiFunction"]["Properties"][
            "Timeout"] == 60  # CloudFront waits as long as the function may run (60 s: its standard maximum)
        assert "OriginAccessControlId" not in origin  # OAC would replace the API keys' Authorization header
    routes = {path: b["TargetOriginId"] for path, b in behaviours(config).items()}
    assert routes == {"default": "FrontendFunctionUrl", "/api": "ApiFunctionUrl", "/api/*": "ApiFunctionUrl"}
    assert config["PriceClass"] == "PriceClass_100" and config["HttpVersion"] == "http2and3"
    assert config["IPV6Enabled"] is True and config["Enabled"] is True
    assert config["ViewerCertificate"] == {"CloudFrontDefaultCertificate": True}


def test_the_api_behaviour_forwards_authorization_every_method_and_caches_nothing() -> None:
    config = distribution(template("flow-builder", "ultra", "prod"))
    for path, behaviour in behaviours(config).items():
        # AllViewerExceptHostHeader: every viewer header but Host (so Authorization, the bearer API keys),
        # all cookies and query strings; with CachingDisabled nothing is cached, so CloudFront may forward
        # Authorization without it being part of a cache key.
        assert behaviour["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER
        assert ALL_VIEWER_EXCEPT_HOST_HEADER == "b689b0a8-53d0-40ab-baf2-68738e2966ac"
        assert behaviour["CachePolicyId"] == CACHING_DISABLED == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
        assert set(behaviour["AllowedMethods"]) == ALL_METHODS, path
        assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
        assert not {"ForwardedValues", "MinTTL", "DefaultTTL", "MaxTTL"} & set(behaviour)  # no legacy caching
        assert not {"FunctionAssociations", "LambdaFunctionAssociations"} & set(behaviour)  # nothing rewrites


def test_outputs_the_one_address_and_keeps_the_function_urls() -> None:
    outputs = template("flow-builder", "ultra", "prod")["Outputs"]
    domain = {"Fn::GetAtt": ["Distribution", "DomainName"]}
    assert outputs["AppUrl"]["Value"] == {"Fn::Join": ["", ["https://", domain]]}
    assert outputs["ApiUrl"]["Value"] == {"Fn::Join": ["", ["https://", domain, "/api"]]}
    assert outputs["ApiServiceUrl"]["Value"] == {"Fn::GetAtt": ["ApiFunctionUrl", "FunctionUrl"]}
    assert outputs["FrontendServiceUrl"]["Value"] == {"Fn::GetAtt": ["FrontendFunctionUrl", "FunctionUrl"]}


def test_only_public_services_are_behind_it_and_standard_has_none() -> None:
    full = template("full", "ultra", "prod")
    routes = {path: b["TargetOriginId"] for path, b in behaviours(distribution(full)).items()}
    assert routes == {"default": "SiteFunctionUrl", "/api": "ApiFunctionUrl", "/api/*": "ApiFunctionUrl"}
    assert resources(full, "AWS::Lambda::Url")["AdminFunctionUrl"]["Properties"]["AuthType"] == "AWS_IAM"
    for spec in SPECS:
        assert not resources(template(spec, "standard", "prod"), "AWS::CloudFront::Distribution")
    for spec in ("minimal", "private-api"):  # no web service; one private API (IAM-authenticated URL)
        assert not resources(template(spec, "ultra", "prod"), "AWS::CloudFront::Distribution")
    private = template("private-api", "ultra", "prod")["Outputs"]
    assert private["ApiUrl"]["Value"] == {"Fn::GetAtt": ["ApiFunctionUrl", "FunctionUrl"]}
    assert "AppUrl" not in private


def test_one_public_service_gets_it_too_and_a_spec_without_a_root_service_defaults_to_the_shortest_path() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        alone = write_spec(Path(tmp), "    api: {type: web, runtime: api, port: 8000, public: true}")
        doc = json.loads(compile_spec(alone, "ultra", "prod").built.body)
        routes = {p: b["TargetOriginId"] for p, b in behaviours(distribution(doc)).items()}
        assert routes == {"default": "ApiFunctionUrl"}
        assert contract.BASE_PATH not in doc["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
        assert doc["Outputs"]["ApiUrl"] == doc["Outputs"]["AppUrl"] | {"Description": doc["Outputs"]["ApiUrl"][
            "Description"]}  # the API at the root
        nested = write_spec(Path(tmp), "    api: {type: web, runtime: api, port: 8000, public: true, path: /api}\n"
                                       "    admin: {type: web, image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/a:1,"
                                       " port: 9000, public: true, path: /api/admin}")
        config = distribution(json.loads(compile_spec(nested, "ultra", "prod").built.body))
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == "ApiFunctionUrl"
    # first match wins: the longer path is listed first
    assert [b["PathPattern"] for b in config["CacheBehaviors"]] == ["/api/admin", "/api/admin/*", "/api", "/api/*"]


def test_the_api_serves_under_its_path_behind_the_function_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The runtime with the environment the template gives the API function, called with a function URL event
    (payload 2.0) for the path CloudFront forwards unchanged."""
    from mangum import Mangum

    from flowbuilder.runtime.api.app import create_app
    from flowbuilder.runtime.config import Settings

    variables = template("flow-builder", "ultra", "prod")["Resources"]["ApiFunction"]["Properties"]["Environment"][
        "Variables"]
    assert variables[contract.BASE_PATH] == "/api"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the queue client; nothing is sent
    settings = Settings(database_url=f"sqlite:///{tmp_path}/api.sqlite", base_path=variables[contract.BASE_PATH],
                        api_keys=("key-1",))
    handler = Mangum(create_app(settings), lifespan="off")

    class Context:
        function_name, aws_request_id, invoked_function_arn, memory_limit_in_mb = "api", "r", "arn", 512

        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    def call(path: str, **headers: str) -> int:
        host = "abc123.lambda-url.us-east-1.on.aws"  # AllViewerExceptHostHeader: the origin's own domain
        event = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
                 "headers": {"host": host, "x-forwarded-proto": "https", **headers}, "isBase64Encoded": False,
                 "requestContext": {"domainName": host, "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1",
                                                                 "sourceIp": "192.0.2.1", "userAgent": "test"},
                                    "requestId": "r", "routeKey": "$default", "stage": "$default"}}
        return int(handler(event, Context())["statusCode"])  # type: ignore[arg-type]

    assert call("/api/healthz") == 200
    assert call("/healthz") == 404
    assert call("/api/workflows") == 401
    assert call("/api/workflows", authorization="Bearer key-1") == 200


def test_suppressed_checks_say_why() -> None:
    metadata = resources(template("flow-builder", "ultra", "prod"), "AWS::CloudFront::Distribution")["Distribution"][
        "Metadata"]
    skips = {s["id"]: s["comment"] for s in metadata["checkov"]["skip"]}
    assert set(skips) == {"CKV_AWS_68", "CKV_AWS_86", "CKV_AWS_174"}  # the CloudFormation checks checkov has
    assert "zero idle cost" in skips["CKV_AWS_68"] and "custom domain" in skips["CKV_AWS_174"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_idle_costs_nothing_and_traffic_is_priced_per_request_and_byte(env: str) -> None:
    prices = Prices(price_book(), "us-east-1")
    built = compile_spec(REPO / "flowbuilder.yaml", "ultra", env)
    idle = estimate(built, prices, Usage(requests_per_month=0, executions_per_month=0))
    cloudfront = [line for line in idle.lines if line.resource == "Distribution"]
    assert {line.kind for line in cloudfront} == {"usage"} and sum(line.cost for line in cloudfront) == 0
    busy = estimate(built, prices, Usage(requests_per_month=1_000_000))
    lines = {line.meter: line for line in busy.lines if line.resource == "Distribution"}
    assert lines["cloudfront-https-request"].quantity == 2_000_000  # two public services
    assert lines["cloudfront-data-out-gb"].quantity == pytest.approx(100)  # 50 KB a response
    assert sum(line.after for line in lines.values()) == pytest.approx(0)  # within 10M requests and 1 TB
    assert busy.total("idle", after=True) == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize(("spec", "env"), [(spec, env) for spec in SPECS for env in ENVIRONMENTS])
def test_ultra_templates_are_cfn_lint_clean(spec: str, env: str) -> None:
    built = compiled(spec, "ultra", env)
    matches = lint(built.built.body, config=ManualArgs(regions=[built.plan.region]))
    assert [f"{m.rule.id} {m.message}" for m in matches] == []  # informational findings too
