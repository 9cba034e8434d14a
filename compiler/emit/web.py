"""Web services on ECS behind one Application Load Balancer (standard): path-prefix routing, HTTPS with
an HTTP redirect when a certificate is given, target tracking on CPU and memory."""

from __future__ import annotations

from typing import Any

from troposphere import Equals, GetAtt, If, Join, Not, Ref, cloudformation, ec2, ecs
from troposphere import elasticloadbalancingv2 as elb

from ..naming import service_id
from ..plan import ServicePlan
from ..scalars import CERTIFICATE_PATTERN
from . import access_logs, manifest
from .database import NO_EGRESS
from .manifest import STACK
from .monitoring import alarm
from .stack import Stack, skip_checks
from .tasks import ecs_service, runs_on_ecs, scalable_target, tracking_policies

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


def _forward(target_group: Any) -> list[elb.Action]:
    return [elb.Action(Type="forward", TargetGroupArn=Ref(target_group))]


def _not_found() -> list[elb.Action]:
    return [elb.Action(Type="fixed-response", FixedResponseConfig=elb.FixedResponseConfig(
        StatusCode="404", ContentType="text/plain", MessageBody="not found"))]


def load_balancer(stack: Stack, public: list[ServicePlan]) -> list[str]:
    """The ALB, its listeners and one target group per public service; returns what services wait for."""
    assert stack.network is not None and stack.task_security_group is not None
    plan = stack.plan
    if plan.production:
        # Production serves HTTPS only: bearer API keys never cross the internet in cleartext. Without a
        # certificate in the spec the parameter has no default, so a deploy must name one.
        props: dict[str, Any] = {"AllowedPattern": CERTIFICATE_PATTERN, "Description": "ACM certificate for HTTPS "
                                 "(required in production; HTTP only redirects)."}
        if plan.certificate_arn:
            props["Default"] = plan.certificate_arn
        stack.parameter("CertificateArn", Type="String", ConstraintDescription="an ACM certificate ARN", **props)
    else:
        stack.parameter("CertificateArn", Type="String", Default=plan.certificate_arn or "",
                        AllowedPattern=f"^$|{CERTIFICATE_PATTERN}",
                        Description="ACM certificate for HTTPS (empty: HTTP only, as dev and staging may be).")
        stack.template.add_condition("HasCertificate", Not(Equals(Ref("CertificateArn"), "")))

    def with_certificate(https: Any, http_only: Any) -> Any:
        return https if plan.production else If("HasCertificate", https, http_only)

    group = stack.add(ec2.SecurityGroup(
        "LoadBalancerSecurityGroup", GroupDescription="Load balancer: HTTP and HTTPS from the internet",
        VpcId=stack.network.vpc_id,
        SecurityGroupIngress=[ec2.SecurityGroupRule(IpProtocol="tcp", FromPort=port, ToPort=port,
                                                    CidrIp="0.0.0.0/0", Description=f"{name} from anywhere")
                              for port, name in ((80, "HTTP"), (443, "HTTPS"))],
        SecurityGroupEgress=[NO_EGRESS]), node=STACK, role="ingress")  # egress only to the tasks: rules below
    skip_checks(group, ("CKV_AWS_260", "Port 80 is open to the internet so browsers find the site: with a "
                                       "certificate (always in prod) it only redirects to HTTPS."))
    stack.load_balancer = stack.add(elb.LoadBalancer(
        "LoadBalancer", Type="application", Scheme="internet-facing", Subnets=stack.network.public_subnets,
        SecurityGroups=[Ref(group)], LoadBalancerAttributes=[
            elb.LoadBalancerAttributes(Key="routing.http.drop_invalid_header_fields.enabled", Value="true")]),
        node=STACK, role="ingress")
    if plan.production:
        logs = access_logs.bucket(stack)
        stack.load_balancer.LoadBalancerAttributes += [
            elb.LoadBalancerAttributes(Key="access_logs.s3.enabled", Value="true"),
            elb.LoadBalancerAttributes(Key="access_logs.s3.bucket", Value=Ref(logs)),
            elb.LoadBalancerAttributes(Key="access_logs.s3.prefix", Value=access_logs.PREFIX)]
        stack.load_balancer.DependsOn = ["LoadBalancerLogsBucketPolicy"]  # ELB checks it may write first
    else:
        skip_checks(stack.load_balancer, (
            "CKV_AWS_91", f"No access logs in {plan.environment}: the bucket they need is kept after the stack "
                          "(CloudFormation cannot delete one holding objects); prod writes them, other "
                          "environments have the 5xx alarm and target metrics."))
    default = None
    for service in public:
        node = manifest.service(service.name)
        target = stack.add(elb.TargetGroup(
            service_id(service, "TargetGroup"), TargetType="ip", Protocol="HTTP", Port=service.port,
            VpcId=stack.network.vpc_id, HealthCheckPath=service.health_check, HealthCheckIntervalSeconds=15,
            HealthyThresholdCount=2, Matcher=elb.Matcher(HttpCode="200-399"),
            TargetGroupAttributes=[elb.TargetGroupAttribute(Key="deregistration_delay.timeout_seconds",
                                                            Value="30")]), node=node, role="ingress")
        stack.target_groups[service.name] = target
        stack.add(ec2.SecurityGroupEgress(
            service_id(service, "EgressFromLoadBalancer"), GroupId=Ref(group),
            DestinationSecurityGroupId=Ref(stack.task_security_group), IpProtocol="tcp", FromPort=service.port,
            ToPort=service.port, Description=f"to {service.name} tasks"), node=node, role="ingress")
        stack.add(ec2.SecurityGroupIngress(
            service_id(service, "IngressFromLoadBalancer"), GroupId=Ref(stack.task_security_group),
            SourceSecurityGroupId=Ref(group), IpProtocol="tcp", FromPort=service.port, ToPort=service.port,
            Description=f"{service.name} from the load balancer"), node=node, role="ingress")
        if service.path == "/":
            default = target
    default_action = _forward(default) if default is not None else _not_found()
    redirect = [elb.Action(Type="redirect", RedirectConfig=elb.RedirectConfig(
        Protocol="HTTPS", Port="443", StatusCode="HTTP_301"))]
    http = stack.add(elb.Listener(
        "HttpListener", LoadBalancerArn=Ref(stack.load_balancer), Port=80, Protocol="HTTP",
        DefaultActions=with_certificate(redirect, default_action)), node=STACK, role="ingress")
    conditional = {} if plan.production else {"Condition": "HasCertificate"}
    https = stack.add(elb.Listener(
        "HttpsListener", **conditional, LoadBalancerArn=Ref(stack.load_balancer), Port=443,
        Protocol="HTTPS", SslPolicy=TLS_POLICY, Certificates=[elb.Certificate(CertificateArn=Ref("CertificateArn"))],
        DefaultActions=default_action), node=STACK, role="ingress")
    serving = with_certificate(Ref(https), Ref(http))
    waits = []
    for priority, service in enumerate(sorted(public, key=lambda s: (-len(s.path), s.path)), start=1):
        if service.path == "/":
            continue
        prefix = service.path.rstrip("/")
        rule = stack.add(elb.ListenerRule(
            service_id(service, "ListenerRule"), ListenerArn=serving, Priority=priority,
            Conditions=[elb.Condition(Field="path-pattern", PathPatternConfig=elb.PathPatternConfig(
                Values=[prefix, f"{prefix}/*"]))],
            Actions=[elb.ListenerRuleAction(Type="forward", TargetGroupArn=Ref(stack.target_groups[service.name]))]),
            node=manifest.service(service.name), role="ingress")
        waits.append(rule.title)
    # ECS refuses a target group that no listener uses yet. The HTTPS listener exists only with a certificate,
    # so services wait on this handle, which references whichever listener serves.
    stack.add(cloudformation.WaitConditionHandle("LoadBalancerListenersReady", Metadata={"ServingListener": serving}),
              node=STACK, role="ingress")
    scheme = with_certificate("https", "http")
    stack.output("LoadBalancerUrl", Join("", [scheme, "://", GetAtt(stack.load_balancer, "DNSName")]),
                 "URL of the load balancer.")
    alarm(stack, "LoadBalancer5xxAlarm", STACK, "The load balancer or its targets answer 5xx",
          Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count",
          dimensions={"LoadBalancer": GetAtt(stack.load_balancer, "LoadBalancerFullName")},
          Statistic="Sum", Period=300, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")
    return ["LoadBalancerListenersReady", "HttpListener", *waits]


def emit(stack: Stack) -> None:
    if not stack.plan.decisions.web_on_ecs:
        return
    services = [s for s in stack.plan.web_services if runs_on_ecs(stack, s)]
    public = [s for s in services if s.public]
    waits = load_balancer(stack, public) if public else []
    for service in services:
        extra: dict[str, Any] = {}
        if service.public:
            extra = {"LoadBalancers": [elb_mapping(stack, service)], "HealthCheckGracePeriodSeconds": 60,
                     "depends_on": tuple(waits)}
        ecs_service(stack, service, **extra)
        target = scalable_target(stack, service)
        tracking_policies(stack, service, target, scale_in=True)
        if service.role == "api" and service.public:
            scheme = "https" if stack.plan.production else If("HasCertificate", "https", "http")
            stack.output("ApiUrl", Join("", [scheme, "://", GetAtt(stack.load_balancer, "DNSName"),
                                             service.path.rstrip("/")]), "Base URL of the Flow Builder API.")


def elb_mapping(stack: Stack, service: ServicePlan) -> Any:
    return ecs.LoadBalancer(ContainerName=service.name, ContainerPort=service.port,
                            TargetGroupArn=Ref(stack.target_groups[service.name]))
