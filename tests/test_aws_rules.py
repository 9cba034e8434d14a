"""AWS behaviour over every compiled template (tests/aws_rules.py), each rule shown able to fail, and every
combination a profile file can express either building a stack that passes the rules or refused, located."""

from __future__ import annotations

import copy
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aws_rules
from build_helpers import MATRIX, SPECS, template
from conftest import REPO, run_fbc
from flowbuilder.compiler.build import compile_spec
from flowbuilder.compiler.diagnostics import Invalid
from flowbuilder.compiler.profiles import resolve
from flowbuilder.compiler.starter import starter


@pytest.mark.parametrize(("spec", "profile", "env"), MATRIX, ids=["-".join(m) for m in MATRIX])
def test_every_template_passes_every_rule(spec: str, profile: str, env: str) -> None:
    assert aws_rules.check(template(spec, profile, env), env) == []


# --- each rule fails on a template that breaks it ---------------------------------------------------------------

def _broken(spec: str, profile: str, env: str) -> dict[str, Any]:
    return copy.deepcopy(template(spec, profile, env))


def test_capacity_providers_first_fails_without_the_dependency() -> None:
    for profile, resource in (("standard", "WorkerService"), ("ultra", "WorkerPipe")):
        doc = _broken("flow-builder", profile, "dev")
        del doc["Resources"][resource]["DependsOn"]
        assert aws_rules.capacity_providers_first(doc, "dev") == [
            f"{resource} names a capacity provider but does not depend on ['ClusterCapacityProviders']"]


def test_instances_survive_replacement_fails_on_the_old_nat_instance() -> None:
    doc = _broken("flow-builder", "standard", "dev")
    doc["Parameters"]["NatInstanceAmi"] = {"Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"}
    nat = doc["Resources"]["NatInstance"]["Properties"]
    nat["ImageId"] = {"Ref": "NatInstanceAmi"}
    nat["NetworkInterfaces"] = [{"NetworkInterfaceId": {"Ref": "NatInstanceInterface"}, "DeviceIndex": "0"}]
    assert aws_rules.instances_survive_replacement(doc, "dev") == [
        "NatInstance attaches a pre-made interface at device index 0: its replacement cannot",
        "NatInstance takes its AMI from SSM at every stack update: a new AMI replaces it"]


def test_nat_forwards_before_it_can_fail_fails_on_install_first() -> None:
    doc = _broken("flow-builder", "standard", "dev")
    data = doc["Resources"]["NatInstance"]["Properties"]["UserData"]
    data["Fn::Base64"] = ("#!/bin/bash\nset -euo pipefail\ndnf install -y iptables-services\n"
                          "sysctl -w net.ipv4.ip_forward=1\niptables -t nat -A POSTROUTING -j MASQUERADE\n")
    assert aws_rules.nat_forwards_before_it_can_fail(doc, "dev") == [
        "NatInstance installs a package before it forwards: a failed install leaves no way out",
        "NatInstance's user data stops at the first failure (set -e)"]
    data["Fn::Base64"] = "#!/bin/bash\nsysctl -w net.ipv4.ip_forward=1\nnft masquerade\nif then fi\n"
    assert aws_rules.nat_forwards_before_it_can_fail(doc, "dev")[0].startswith(
        "NatInstance's user data is not valid bash")


def test_web_services_never_at_zero_fails_at_zero() -> None:
    doc = _broken("flow-builder", "standard", "dev")
    doc["Resources"]["ApiScalableTarget"]["Properties"]["MinCapacity"] = 0
    assert aws_rules.web_services_never_at_zero(doc, "dev") == [
        "ApiService serves HTTP on ECS with a minimum of 0 tasks: it never starts"]


def test_autoscaled_services_keep_their_count_fails_on_a_desired_count() -> None:
    doc = _broken("flow-builder", "standard", "prod")
    doc["Resources"]["ApiService"]["Properties"]["DesiredCount"] = 2
    assert aws_rules.autoscaled_services_keep_their_count(doc, "prod") == [
        "ApiService is autoscaled but sets DesiredCount 2"]


def test_web_service_at_zero_is_refused_where_it_is_written(tmp_path: Path, spec_text: str) -> None:
    spec = tmp_path / "flowbuilder.yaml"
    spec.write_text(spec_text.replace("api: {scaling: {min: 1, max: 1}}", "api: {scaling: {min: 0, max: 1}}"))
    result = run_fbc("build", "-f", str(spec), "--profile", "standard", "--env", "dev", "-o", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert f"{spec}:64:30: spec.environments.dev.services.api.scaling.min: web service 'api' would never start" \
        in result.output
    assert run_fbc("build", "-f", str(spec), "--profile", "ultra", "--env", "dev", "-o",
                   str(tmp_path / "o")).exit_code == 0  # function URLs start on the first request


def test_functions_reach_their_database_fails_outside_the_vpc(tmp_path: Path) -> None:
    # standard's network and RDS with function URLs: the API function must join the VPC (it once did not).
    doc = _build_or_refusal(tmp_path, {"vpc": "new", "nat": "single-gateway", "azCount": 2, "mode": "rds",
                                       "serving": "function-url", "dispatch": "autoscaled-service"})
    assert doc is not None and aws_rules.functions_reach_their_database(doc, "dev") == []
    del doc["Resources"]["ApiFunction"]["Properties"]["VpcConfig"]
    assert aws_rules.functions_reach_their_database(doc, "dev") == [
        "ApiFunction connects to RDS but is not in the VPC as a database client"]


def test_async_functions_keep_failures_fails_without_destination_or_alarm() -> None:
    doc = _broken("flow-builder", "ultra", "prod")
    del doc["Resources"]["SchedulerDeadLetterAlarm"]
    assert aws_rules.async_functions_keep_failures(doc, "prod") == [
        "SchedulerFunction's failure destination ['SchedulerDeadLetterQueue'] has no alarm"]
    del doc["Resources"]["SchedulerInvokeConfig"]
    assert aws_rules.async_functions_keep_failures(doc, "prod") == [
        "SchedulerFunction is invoked asynchronously without an on-failure destination: errors vanish"]


def test_spot_tasks_use_the_warning_fails_at_30_seconds() -> None:
    doc = _broken("flow-builder", "ultra", "dev")
    doc["Resources"]["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"][0]["StopTimeout"] = 30
    assert aws_rules.spot_tasks_use_the_warning(doc, "dev") == [
        "WorkerPipe runs on Fargate Spot but worker stops after 30 s (Spot gives 120)"]


def test_production_serves_https_fails_on_an_optional_certificate() -> None:
    dev = _broken("flow-builder", "standard", "dev")  # dev may serve HTTP: the rule says nothing there
    assert aws_rules.production_serves_https(dev, "dev") == []
    assert aws_rules.production_serves_https(dev, "prod") == [
        "HttpListener serves plain HTTP in prod",
        "HttpsListener exists only under condition HasCertificate in prod",
        "CertificateArn may be empty in prod"]


def test_prod_without_a_certificate_must_be_given_one_at_deploy() -> None:
    doc = template("flow-builder", "standard", "prod")
    assert "Default" not in doc["Parameters"]["CertificateArn"]
    assert "CertificateArn" in compile_spec(SPECS["flow-builder"], "standard", "prod").to_provide()
    full = template("full", "standard", "prod")  # names its certificate in the prod overlay
    assert full["Parameters"]["CertificateArn"]["Default"].startswith("arn:aws:acm:us-west-2:")
    assert full["Outputs"]["ApiUrl"]["Value"]["Fn::Join"][1][0] == "https"


def test_contract_variables_are_used_fails_on_a_variable_nothing_reads() -> None:
    doc = _broken("flow-builder", "standard", "dev")
    container = doc["Resources"]["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    container["Environment"].append({"Name": "FLOWBUILDER_NOBODY_READS_THIS", "Value": "1"})
    assert aws_rules.contract_variables_are_used(doc, "dev") == [
        "FLOWBUILDER_NOBODY_READS_THIS is set by the template but nothing in runtime/ uses it"]
    # Parsed into Settings but never read again is not used: the worker timeout before it was enforced.
    # (Settings.from_env parsed it into settings.worker_timeout, and no other line read that field.)
    parsed_only = re.sub(r"\bworker_timeout\b", "unread", aws_rules._runtime_reads())
    assert "FLOWBUILDER_WORKER_TIMEOUT is set by the template but nothing in runtime/ uses it" in \
        aws_rules.contract_variables_are_used(doc, "dev", runtime=parsed_only)


def test_data_has_explicit_lifecycle_fails_without_policies() -> None:
    doc = _broken("flow-builder", "ultra", "dev")
    del doc["Resources"]["WorkflowRequestsQueue"]["UpdateReplacePolicy"]
    del doc["Resources"]["WorkerLogGroup"]["DeletionPolicy"]
    assert aws_rules.data_has_explicit_lifecycle(doc, "dev") == [
        "WorkflowRequestsQueue has no UpdateReplacePolicy", "WorkerLogGroup has no DeletionPolicy"]


def test_retained_data_keeps_its_key_fails_when_the_key_goes() -> None:
    doc = _broken("flow-builder", "standard", "prod")
    doc["Resources"]["AlertKey"]["DeletionPolicy"] = "Delete"
    assert "WorkerLogGroup is kept after a delete but its key AlertKey is not" in \
        aws_rules.retained_data_keeps_its_key(doc, "prod")


def test_rds_follows_its_minor_upgrades_fails_on_a_pinned_minor() -> None:
    doc = _broken("flow-builder", "standard", "prod")
    doc["Resources"]["Database"]["Properties"]["EngineVersion"] = "16.10"
    assert aws_rules.rds_follows_its_minor_upgrades(doc, "prod") == ["Database pins the minor version 16.10"]


def test_scale_in_spares_running_executions_fails_without_protection() -> None:
    doc = _broken("flow-builder", "standard", "dev")
    policy = doc["Resources"]["WorkerTaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "ProtectOwnTask"]
    assert aws_rules.scale_in_spares_running_executions(doc, "dev") == [
        "WorkerService runs a poll worker whose task role cannot protect it from scale-in"]


# --- secrets per environment --------------------------------------------------------------------------------------

def _secret_names(doc: dict[str, Any]) -> set[str]:
    """SSM parameter names the template reads (secrets in the ECS Secrets and Lambda references)."""
    return set(re.findall(r"parameter(/[A-Za-z0-9/_.-]+)", json.dumps(doc)))


@pytest.mark.parametrize("profile", ["standard", "ultra"])
def test_environments_read_their_own_secrets(profile: str, tmp_path: Path) -> None:
    (tmp_path / "flowbuilder.yaml").write_text(starter("shop", "us-east-1", "123456789012"))
    for spec in (REPO / "flowbuilder.yaml", tmp_path / "flowbuilder.yaml"):
        names = {env: _secret_names(json.loads(compile_spec(spec, profile, env).built.body))
                 for env in ("dev", "prod")}
        assert names["dev"] and names["prod"] and not names["dev"] & names["prod"], names
        assert all("/dev/" in n for n in names["dev"])


# --- every combination of profile settings --------------------------------------------------------------------------

CORE = {
    "vpc": ("new", "existing"), "nat": ("gateway-per-az", "single-gateway", "instance", "none"),
    "azCount": (1, 2, 3), "mode": ("rds", "external"), "serving": ("load-balancer", "function-url"),
    "dispatch": ("autoscaled-service", "pipe"),
}


def _profile(tmp_path: Path, setting: dict[str, Any]) -> Path:
    path = tmp_path / "profile.yaml"
    monitoring = {k: setting[k] for k in ("dashboard", "alarms") if k in setting}
    path.write_text(json.dumps({  # JSON is YAML: one line per key keeps the marks simple
        "apiVersion": "flowbuilder.dev/v1alpha1", "kind": "Profile", "metadata": {"name": "combination"},
        "spec": {"network": {"vpc": setting["vpc"], "nat": setting["nat"], "azCount": setting["azCount"]},
                 "database": {"mode": setting["mode"], "multiAz": setting.get("multiAz", False)},
                 "web": {"serving": setting["serving"]},
                 "workers": {"dispatch": setting["dispatch"], "capacity": setting.get("capacity", "FARGATE")},
                 **({"monitoring": monitoring} if monitoring else {})}}, indent=1))
    return path


def _build_or_refusal(tmp_path: Path, setting: dict[str, Any], spec: str = "flow-builder",
                      env: str = "dev") -> dict[str, Any] | None:
    """The template, or None after checking the refusal is located in the profile file."""
    path = _profile(tmp_path, setting)
    try:
        resolve(str(path), env)
    except Invalid as refused:
        for diagnostic in refused.diagnostics:
            assert diagnostic.file == str(path) and diagnostic.mark is not None, diagnostic
            assert diagnostic.path[:1] == ("spec",), diagnostic
        result = run_fbc("validate", "-f", str(SPECS[spec]), "--profile", str(path))
        assert result.exit_code == 1 and f"{path}:" in result.output, result.output
        return None
    return json.loads(compile_spec(SPECS[spec], str(path), env).built.body)  # type: ignore[no-any-return]


def test_every_core_combination_builds_a_sound_stack_or_is_refused(tmp_path: Path) -> None:
    built = refused = 0
    for values in itertools.product(*CORE.values()):
        setting = dict(zip(CORE, values, strict=True))
        doc = _build_or_refusal(tmp_path, setting)
        if doc is None:
            refused += 1
            continue
        built += 1
        assert aws_rules.check(doc, "dev") == [], setting
    # The refusals are the combinations AWS cannot run (profiles.conflicts), not most of them.
    assert (built, refused) == (76, 116)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(setting=st.fixed_dictionaries({
    **{k: st.sampled_from(v) for k, v in CORE.items()},
    "capacity": st.sampled_from(("FARGATE", "FARGATE_SPOT")), "multiAz": st.booleans(),
    "dashboard": st.booleans(), "alarms": st.sampled_from(("full", "dead-letter")),
    "spec": st.sampled_from(sorted(SPECS)), "env": st.sampled_from(("dev", "prod")),
}))
def test_any_combination_also_passes_cfn_lint(tmp_path: Path, setting: dict[str, Any]) -> None:
    doc = _build_or_refusal(tmp_path, setting, setting["spec"], setting["env"])
    if doc is None:
        return
    assert aws_rules.check(doc, setting["env"]) == []
    matches = lint(json.dumps(doc), config=ManualArgs(regions=["us-east-1", "us-west-2"]))
    assert [f"{m.rule.id} {m.message}" for m in matches if m.rule.id[0] in "EW"] == []


def test_prod_load_balancer_writes_access_logs_to_a_kept_bucket() -> None:
    doc = template("flow-builder", "standard", "prod")
    balancer = doc["Resources"]["LoadBalancer"]
    attributes = {a["Key"]: a["Value"] for a in balancer["Properties"]["LoadBalancerAttributes"]}
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.bucket"] == {"Ref": "LoadBalancerLogsBucket"}
    bucket = doc["Resources"]["LoadBalancerLogsBucket"]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")  # never empty on delete
    rules = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules[0]["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}  # ALB cannot write under KMS
    statements = doc["Resources"]["LoadBalancerLogsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    principals = [s["Principal"] for s in statements if s["Effect"] == "Allow"]
    assert principals == [{"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
                          {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::127311923021:root"}}]  # us-east-1
    assert doc["Resources"]["LoadBalancer"]["DependsOn"] == ["LoadBalancerLogsBucketPolicy"]
    dev = template("flow-builder", "standard", "dev")
    assert "LoadBalancerLogsBucket" not in dev["Resources"]


def test_targets_outlive_the_balancers_idle_timeout_fails_at_uvicorns_default() -> None:
    """uvicorn's default keep-alive (5 s) was the API's until issue 17's load benchmark saw the resets."""
    doc = _broken("full", "standard", "prod")
    assert any(r["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer" for r in doc["Resources"].values())
    assert aws_rules.targets_outlive_the_balancers_idle_timeout(doc, "prod", keep_alive=5)
    assert aws_rules.targets_outlive_the_balancers_idle_timeout(doc, "prod") == []
