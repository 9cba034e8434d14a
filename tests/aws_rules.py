"""AWS behaviour as rules over compiled templates (DESIGN.md principle 11).

cfn-lint checks a template against resource schemas; these rules encode what AWS does on update, delete,
rotation and scaling, which no schema shows. Each rule takes a template (and its environment) and returns
what breaks, one line per finding; tests/test_aws_rules.py runs every rule over every template of every test
spec x profile x environment, and feeds each rule a broken template to show that it can fail.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from flowbuilder.runtime import contract as runtime_contract

Template = dict[str, Any]
Rule = Callable[[Template, str], list[str]]

RUNTIME = Path(__file__).resolve().parent.parent / "runtime"
PRODUCTION = ("prod", "production")


def _resources(doc: Template, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in doc["Resources"].items():
        if resource["Type"] == kind:
            yield name, resource


def _references(node: Any) -> Iterator[str]:
    """Logical IDs a value refers to (Ref, GetAtt, and ${Name} inside Sub)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt":
                yield value[0] if isinstance(value, list) else str(value).split(".")[0]
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                yield from (m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
                if isinstance(value, list):
                    yield from _references(value[1])
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def depends_on(doc: Template, name: str) -> set[str]:
    """Every resource `name` waits for on create (and outlives on delete): DependsOn and references, transitively."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        resource = doc["Resources"].get(todo.pop())
        if resource is None:
            continue
        direct = resource.get("DependsOn", [])
        direct = [direct] if isinstance(direct, str) else list(direct)
        direct += [r for r in _references(resource.get("Properties", {})) if r in doc["Resources"]]
        for item in direct:
            if item not in seen:
                seen.add(item)
                todo.append(item)
    return seen


def _container_env(task: dict[str, Any]) -> dict[str, Any]:
    env: dict[str, Any] = {}
    for container in task["Properties"]["ContainerDefinitions"]:
        env.update({e["Name"]: e["Value"] for e in container.get("Environment", [])})
    return env


def _task_of(doc: Template, resource: dict[str, Any]) -> dict[str, Any] | None:
    props = resource["Properties"]
    ref = props.get("TaskDefinition") or props.get("TargetParameters", {}).get("EcsTaskParameters", {}).get(
        "TaskDefinitionArn")
    return doc["Resources"].get(ref["Ref"]) if isinstance(ref, dict) and "Ref" in ref else None


def _strategy(resource: dict[str, Any]) -> list[dict[str, Any]]:
    props = resource.get("Properties", {})
    if resource["Type"] == "AWS::Pipes::Pipe":
        return list(props.get("TargetParameters", {}).get("EcsTaskParameters", {}).get("CapacityProviderStrategy", []))
    return list(props.get("CapacityProviderStrategy", []))


# --- the rules ------------------------------------------------------------------------------------------------

def capacity_providers_first(doc: Template, _env: str) -> list[str]:
    """A service or Pipe that names a capacity provider depends on the cluster's association: on create it can
    race it, on delete ECS refuses to remove a provider in use ("The specified capacity provider is in use")."""
    associations = {name for name, _ in _resources(doc, "AWS::ECS::ClusterCapacityProviderAssociations")}
    found = []
    for name, resource in doc["Resources"].items():
        if _strategy(resource) and not associations & depends_on(doc, name):
            found.append(f"{name} names a capacity provider but does not depend on {sorted(associations) or 'it'}")
    return found


def instances_survive_replacement(doc: Template, _env: str) -> list[str]:
    """An instance is replaced by many updates; its replacement must be creatable while it still runs (no
    pre-made interface at device index 0), and a newly published AMI must not replace it (no image resolved by
    CloudFormation from SSM on each update; EC2's launch-time `resolve:ssm:` in a launch template is fine)."""
    ssm_parameters = {name for name, p in doc.get("Parameters", {}).items() if "SSM::Parameter" in p["Type"]}
    found = []
    for name, resource in _resources(doc, "AWS::EC2::Instance"):
        props = resource["Properties"]
        for interface in props.get("NetworkInterfaces", []):
            if "NetworkInterfaceId" in interface and str(interface.get("DeviceIndex")) == "0":
                found.append(f"{name} attaches a pre-made interface at device index 0: its replacement cannot")
        image = props.get("ImageId")
        if (isinstance(image, dict) and image.get("Ref") in ssm_parameters) or "{{resolve:ssm" in str(image):
            found.append(f"{name} takes its AMI from SSM at every stack update: a new AMI replaces it")
        template_ref = props.get("LaunchTemplate", {}).get("LaunchTemplateId", {})
        launch = doc["Resources"].get(template_ref.get("Ref", "")) if isinstance(template_ref, dict) else None
        image = launch["Properties"]["LaunchTemplateData"].get("ImageId") if launch else None
        if (isinstance(image, dict) and image.get("Ref") in ssm_parameters) or "{{resolve:ssm" in str(image):
            found.append(f"{name}'s launch template takes its AMI from SSM at every stack update")
    return found


def nat_forwards_before_it_can_fail(doc: Template, _env: str) -> list[str]:
    """A NAT instance's user data turns on forwarding and masquerading before anything that can fail (a package
    install), and is a valid bash script."""
    forwarding_interfaces = {n for n, r in _resources(doc, "AWS::EC2::NetworkInterface")
                             if r["Properties"].get("SourceDestCheck") is False}
    found = []
    for name, resource in _resources(doc, "AWS::EC2::Instance"):
        props = resource["Properties"]
        script = props.get("UserData", {}).get("Fn::Base64")
        # A NAT forwards: source/destination check off on the instance or on the interface it attaches.
        nat = props.get("SourceDestCheck") is False or bool(
            forwarding_interfaces & set(_references(props.get("NetworkInterfaces", []))))
        if not isinstance(script, str) or not nat:
            continue
        lines = script.splitlines()
        first = {what: next((i for i, line in enumerate(lines) if re.search(pattern, line)), None)
                 for what, pattern in (("forward", r"sysctl -w net\.ipv4\.ip_forward=1|sysctl (--system|-p)"
                                                   r"|/proc/sys/net/ipv4/ip_forward"),
                                       ("masquerade", r"masquerade|MASQUERADE"),
                                       ("install", r"\b(dnf|yum) install"),
                                       ("persist", r"/etc/sysctl\.d/"))}
        if first["forward"] is None or first["masquerade"] is None:
            found.append(f"{name} never turns on forwarding and masquerading")
        elif first["install"] is not None and first["forward"] > first["install"]:
            found.append(f"{name} installs a package before it forwards: a failed install leaves no way out")
        elif first["persist"] is not None and first["persist"] < first["forward"]:
            found.append(f"{name} persists settings before it applies them")
        if "set -e" in script:
            found.append(f"{name}'s user data stops at the first failure (set -e)")
        check = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        if check.returncode:
            found.append(f"{name}'s user data is not valid bash: {check.stderr.strip()}")
    return found


def web_services_never_at_zero(doc: Template, _env: str) -> list[str]:
    """A web service on ECS at 0 tasks never starts (no task, no CPU metric, requests do not start one)."""
    found = []
    targets = {}
    for _, target in _resources(doc, "AWS::ApplicationAutoScaling::ScalableTarget"):
        service = next((r for r in _references(target["Properties"]["ResourceId"]) if r.endswith("Service")), None)
        targets[service] = target["Properties"]["MinCapacity"]
    for name, service in _resources(doc, "AWS::ECS::Service"):
        task = _task_of(doc, service)
        web = task is not None and any(c.get("PortMappings") for c in task["Properties"]["ContainerDefinitions"])
        if web and (service["Properties"].get("DesiredCount", 1) < 1 or targets.get(name, 1) < 1):
            found.append(f"{name} serves HTTP on ECS with a minimum of 0 tasks: it never starts")
    return found


def autoscaled_services_keep_their_count(doc: Template, _env: str) -> list[str]:
    """A DesiredCount in the template resets an autoscaled service to it on every update that touches the
    service (an image deploy at peak drops to the template's count); the scalable target owns the count."""
    scaled = {r for _, t in _resources(doc, "AWS::ApplicationAutoScaling::ScalableTarget")
              for r in _references(t["Properties"]["ResourceId"])}
    return [f"{name} is autoscaled but sets DesiredCount {s['Properties']['DesiredCount']}"
            for name, s in _resources(doc, "AWS::ECS::Service") if name in scaled and "DesiredCount" in s["Properties"]]


def functions_reach_their_database(doc: Template, _env: str) -> list[str]:
    """A function told to connect to RDS (FLOWBUILDER_DB_HOST) must be in the VPC with the database's client
    security group: RDS is private, and outside the VPC every connection times out."""
    clients = {name for name, _ in _resources(doc, "AWS::EC2::SecurityGroup") if name == "DatabaseClientSecurityGroup"}
    found = []
    for name, fn in _resources(doc, "AWS::Lambda::Function"):
        if "FLOWBUILDER_DB_HOST" not in fn["Properties"].get("Environment", {}).get("Variables", {}):
            continue
        groups = set(_references(fn["Properties"].get("VpcConfig", {}).get("SecurityGroupIds", [])))
        if not clients & groups:
            found.append(f"{name} connects to RDS but is not in the VPC as a database client")
    return found


def async_functions_keep_failures(doc: Template, _env: str) -> list[str]:
    """EventBridge Scheduler invokes Lambda asynchronously; its retry and DLQ cover delivery only. A handler
    error needs the function's own on-failure destination, and someone must hear of it (an alarm on it)."""
    found = []
    invoked = {r for _, s in _resources(doc, "AWS::Scheduler::Schedule")
               for r in _references(s["Properties"]["Target"]["Arn"])}
    configs = {next(iter(_references(c["Properties"]["FunctionName"])), None): c
               for _, c in _resources(doc, "AWS::Lambda::EventInvokeConfig")}
    alarmed = {r for _, a in _resources(doc, "AWS::CloudWatch::Alarm") for r in _references(a["Properties"])}
    for fn in sorted(invoked):
        config = configs.get(fn)
        destination = (config or {}).get("Properties", {}).get("DestinationConfig", {}).get("OnFailure", {})
        targets = set(_references(destination.get("Destination")))
        if not targets:
            found.append(f"{fn} is invoked asynchronously without an on-failure destination: errors vanish")
        elif not targets & alarmed:
            found.append(f"{fn}'s failure destination {sorted(targets)} has no alarm")
    return found


SPOT_WARNING = 110  # Fargate Spot warns 120 s ahead; the runtime needs most of it


def spot_tasks_use_the_warning(doc: Template, _env: str) -> list[str]:
    found = []
    for name, resource in doc["Resources"].items():
        if not any(s.get("CapacityProvider") == "FARGATE_SPOT" for s in _strategy(resource)):
            continue
        task = _task_of(doc, resource)
        for container in (task or {}).get("Properties", {}).get("ContainerDefinitions", []):
            if container.get("StopTimeout", 30) < SPOT_WARNING:
                found.append(f"{name} runs on Fargate Spot but {container['Name']} stops after "
                             f"{container.get('StopTimeout', 30)} s (Spot gives 120)")
    return found


def production_serves_https(doc: Template, env: str) -> list[str]:
    """In production bearer API keys never cross the internet in cleartext: port 80 only redirects, the HTTPS
    listener always exists, and its certificate cannot be left empty."""
    if env not in PRODUCTION:
        return []
    found = []
    for name, listener in _resources(doc, "AWS::ElasticLoadBalancingV2::Listener"):
        props = listener["Properties"]
        if props.get("Protocol") == "HTTP":
            actions = props["DefaultActions"]
            if not (isinstance(actions, list) and all(a.get("Type") == "redirect" for a in actions)):
                found.append(f"{name} serves plain HTTP in {env}")
        elif "Condition" in listener:
            found.append(f"{name} exists only under condition {listener['Condition']} in {env}")
    balancers = list(_resources(doc, "AWS::ElasticLoadBalancingV2::LoadBalancer"))
    https = [n for n, r in _resources(doc, "AWS::ElasticLoadBalancingV2::Listener")
             if r["Properties"].get("Protocol") == "HTTPS"]
    if balancers and not https:
        found.append(f"the load balancer has no HTTPS listener in {env}")
    certificate = doc.get("Parameters", {}).get("CertificateArn")
    if certificate is not None and re.fullmatch(certificate.get("AllowedPattern", ".*"), ""):
        found.append(f"CertificateArn may be empty in {env}")
    return found


def _runtime_reads() -> str:
    """The runtime's source, less the lines that only parse variables into Settings."""
    text = []
    for path in sorted(RUNTIME.rglob("*.py")):
        if path.name == "contract.py":  # names and meanings only: nothing is read there
            continue
        source = path.read_text("utf-8")
        if path.name == "config.py":  # the table and from_env only parse; database_url() really uses its inputs
            source = source.split("def database_url", 1)[1].split("class Settings", 1)[0]
        text.append(source)
    return "\n".join(text)


def contract_variables_are_used(doc: Template, _env: str, runtime: str | None = None) -> list[str]:
    """Every FLOWBUILDER_* variable a template sets is used by the runtime, not just parsed: read outside
    Settings.from_env, or its Settings field (the name without prefix, lower case) is read somewhere."""
    source = _runtime_reads() if runtime is None else runtime
    names: set[str] = set()
    for _, task in _resources(doc, "AWS::ECS::TaskDefinition"):
        names |= set(_container_env(task))
        for container in task["Properties"]["ContainerDefinitions"]:
            names |= {s["Name"] for s in container.get("Secrets", [])}
    for _, fn in _resources(doc, "AWS::Lambda::Function"):
        names |= set(fn["Properties"].get("Environment", {}).get("Variables", {}))
    for _, pipe in _resources(doc, "AWS::Pipes::Pipe"):
        overrides = pipe["Properties"]["TargetParameters"]["EcsTaskParameters"].get("Overrides", {})
        names |= {e["Name"] for c in overrides.get("ContainerOverrides", []) for e in c.get("Environment", [])}
    constants = {value: key for key, value in vars(runtime_contract).items() if isinstance(value, str)}
    found = []
    for name in sorted(n for n in names if n.startswith("FLOWBUILDER_")):
        if name.startswith("FLOWBUILDER_SECRET_") and "SECRET_REF_PREFIX" in source:
            continue  # resolved by prefix (config.resolve_secrets)
        field = name.removeprefix("FLOWBUILDER_").lower()
        by_constant = name in constants and re.search(rf"\bc\.{constants[name]}\b", source)
        if not re.search(rf"[\"']{name}[\"']", source) and not re.search(rf"\.{field}\b", source) \
                and not by_constant:
            found.append(f"{name} is set by the template but nothing in runtime/ uses it")
    return found


def data_has_explicit_lifecycle(doc: Template, _env: str) -> list[str]:
    """Queues and log groups say what a replacement and a stack delete do with what they hold (I3011)."""
    found = []
    for kind in ("AWS::SQS::Queue", "AWS::Logs::LogGroup"):
        for name, resource in _resources(doc, kind):
            missing = [p for p in ("DeletionPolicy", "UpdateReplacePolicy") if p not in resource]
            if missing:
                found.append(f"{name} has no {' or '.join(missing)}")
    return found


def retained_data_keeps_its_key(doc: Template, _env: str) -> list[str]:
    """Whatever a stack delete keeps must stay readable: a retained resource encrypted with a key of the stack
    needs that key retained too (KMS deletes a key 7-30 days after the stack, and the data with it)."""
    keys = {name: r for name, r in _resources(doc, "AWS::KMS::Key")}
    found = []
    for name, resource in doc["Resources"].items():
        if resource.get("DeletionPolicy") not in ("Retain", "Snapshot"):
            continue
        for key in sorted(set(_references(resource.get("Properties", {}))) & set(keys)):
            if keys[key].get("DeletionPolicy") != "Retain":
                found.append(f"{name} is kept after a delete but its key {key} is not")
    return found


def rds_follows_its_minor_upgrades(doc: Template, _env: str) -> list[str]:
    """RDS upgrades minors itself (AutoMinorVersionUpgrade); a template pinning a minor falls behind it, and
    CloudFormation then tries a downgrade, which RDS refuses."""
    return [f"{name} pins the minor version {r['Properties']['EngineVersion']}"
            for name, r in _resources(doc, "AWS::RDS::DBInstance")
            if "." in str(r["Properties"].get("EngineVersion", "")) and r["Properties"].get("AutoMinorVersionUpgrade")]


def scale_in_spares_running_executions(doc: Template, _env: str) -> list[str]:
    """An autoscaled worker may be scaled in while it runs an execution: it protects its own task, so its role
    must be allowed to (ecs:UpdateTaskProtection)."""
    found = []
    for name, service in _resources(doc, "AWS::ECS::Service"):
        task = _task_of(doc, service)
        if task is None or _container_env(task).get("FLOWBUILDER_WORKER_MODE") != "poll":
            continue
        role = doc["Resources"].get(next(iter(_references(task["Properties"].get("TaskRoleArn", {}))), ""), {})
        actions = {a for p in role.get("Properties", {}).get("Policies", [])
                   for s in p["PolicyDocument"]["Statement"] for a in s["Action"]}
        if "ecs:UpdateTaskProtection" not in actions:
            found.append(f"{name} runs a poll worker whose task role cannot protect it from scale-in")
    return found


ALB_DEFAULT_IDLE_SECONDS = 60


def targets_outlive_the_balancers_idle_timeout(doc: Template, _env: str,
                                              keep_alive: int | None = None) -> list[str]:
    """An Application Load Balancer reuses idle connections to its targets until its idle timeout (60 s unless
    set): a target that closes an idle connection sooner can close one the balancer is sending a request on,
    a 502 for the client. AWS's advice: the target's keep-alive longer than the balancer's idle timeout. The
    target is the runtime's uvicorn (runtime/api/__main__.py)."""
    if keep_alive is None:
        from flowbuilder.runtime.api.__main__ import KEEP_ALIVE_SECONDS as keep_alive
    found = []
    for name, balancer in _resources(doc, "AWS::ElasticLoadBalancingV2::LoadBalancer"):
        if balancer["Properties"].get("Type", "application") != "application":
            continue
        attributes = {a["Key"]: a["Value"] for a in balancer["Properties"].get("LoadBalancerAttributes", [])}
        idle = int(attributes.get("idle_timeout.timeout_seconds", ALB_DEFAULT_IDLE_SECONDS))
        if keep_alive <= idle:
            found.append(f"{name} keeps idle connections {idle} s; the API's keep-alive is {keep_alive} s")
    return found


RULES: tuple[Rule, ...] = (
    capacity_providers_first,
    instances_survive_replacement,
    nat_forwards_before_it_can_fail,
    web_services_never_at_zero,
    autoscaled_services_keep_their_count,
    functions_reach_their_database,
    async_functions_keep_failures,
    spot_tasks_use_the_warning,
    production_serves_https,
    contract_variables_are_used,
    data_has_explicit_lifecycle,
    retained_data_keeps_its_key,
    rds_follows_its_minor_upgrades,
    scale_in_spares_running_executions,
    targets_outlive_the_balancers_idle_timeout,
)


def check(doc: Template, env: str) -> list[str]:
    return [f"{rule.__name__}: {finding}" for rule in RULES for finding in rule(doc, env)]
