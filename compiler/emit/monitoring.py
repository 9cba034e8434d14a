"""Alerts: the SNS topic every alarm notifies, the alarm helper, and the dashboard (standard)."""

from __future__ import annotations

import json
from typing import Any

from troposphere import Equals, Not, Ref, Sub, cloudwatch, kms, sns

from ..naming import queue_id, service_id
from .manifest import STACK, Node
from .stack import Stack, policy_document, skip_checks


def topic(stack: Stack) -> None:
    """The alert topic. Encrypted with a customer key in standard: CloudWatch cannot publish to a topic under
    the AWS-managed SNS key. ultra keeps no customer key (USD 1/month each), so its topic is unencrypted."""
    plan = stack.plan
    props: dict[str, Any] = {"DisplayName": f"{plan.stack_name} alerts"}
    if plan.decisions.customer_key:
        # The logical ID predates the log groups: renaming it would replace the key. Production keeps its log
        # groups after a stack delete, so it keeps their key too: a deleted key makes them unreadable for good.
        kept = "Retain" if plan.production else "Delete"
        key = stack.add(kms.Key(
            "AlertKey", Description=f"{plan.stack_name}: encrypts the alert topic and the log groups",
            EnableKeyRotation=True, DeletionPolicy=kept, UpdateReplacePolicy=kept,
            KeyPolicy=policy_document([
                {"Sid": "AccountAdministers", "Effect": "Allow",
                 "Principal": {"AWS": Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
                 "Action": "kms:*", "Resource": "*"},  # a key policy's resource is the key itself
                {"Sid": "CloudWatchPublishes", "Effect": "Allow",
                 "Principal": {"Service": "cloudwatch.amazonaws.com"},
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
                 "Condition": {"StringEquals": {"aws:SourceAccount": Ref("AWS::AccountId")}}},
                {"Sid": "CloudWatchLogsEncrypts", "Effect": "Allow",
                 "Principal": {"Service": Sub("logs.${AWS::Region}.amazonaws.com")},
                 "Action": ["kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*",
                            "kms:ReEncrypt*"], "Resource": "*",
                 "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": Sub(
                     "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*")}}},
            ])), node=STACK, role="encryption")
        stack.key = key
        props["KmsMasterKeyId"] = Ref(key)
    stack.alert_topic = stack.add(sns.Topic("AlertTopic", **props), node=STACK, role="alerts")
    if stack.key is None:
        skip_checks(stack.alert_topic, ("CKV_AWS_26", "Unencrypted: CloudWatch cannot publish to a topic under the "
                                                      "AWS-managed SNS key, and a customer key (USD 1/month) would "
                                                      "break zero idle cost; alarm notices carry no secrets."))
    stack.parameter("AlertEmail", Type="String", Default=plan.alert_email or "",
                    AllowedPattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$",
                    Description="Address that receives alarm notifications (empty: none).")
    stack.template.add_condition("HasAlertEmail", Not(Equals(Ref("AlertEmail"), "")))
    stack.add(sns.SubscriptionResource("AlertEmailSubscription", Condition="HasAlertEmail", Protocol="email",
                               Endpoint=Ref("AlertEmail"), TopicArn=Ref(stack.alert_topic)), node=STACK, role="alerts")
    stack.output("AlertTopicArn", Ref(stack.alert_topic), "SNS topic every alarm notifies.")


def alarm(stack: Stack, logical_id: str, node: Node, description: str, dimensions: dict[str, Any],
          **props: Any) -> Any:
    """An alarm about `node` that notifies the alert topic when it fires and when it clears."""
    assert stack.alert_topic is not None, "monitoring.topic runs before any generator that adds alarms"
    props.setdefault("TreatMissingData", "notBreaching")
    return stack.add(cloudwatch.Alarm(
        logical_id, AlarmDescription=description, ActionsEnabled=True,
        Dimensions=[cloudwatch.MetricDimension(Name=k, Value=v) for k, v in dimensions.items()],
        AlarmActions=[Ref(stack.alert_topic)], OKActions=[Ref(stack.alert_topic)], **props), node=node, role="alarm")


def _widget(title: str, metrics: list[list[Any]], x: int, y: int, stat: str = "Average") -> dict[str, Any]:
    return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6,
            "properties": {"title": title, "region": "${AWS::Region}", "stat": stat, "period": 60,
                           "view": "timeSeries", "stacked": False, "metrics": metrics}}


def dashboard(stack: Stack) -> None:
    """Queue depth and age, dead letters, services, load balancer and database, on one page (standard)."""
    if not stack.plan.decisions.dashboard:
        return
    plan = stack.plan
    widgets: list[dict[str, Any]] = []

    def place(title: str, metrics: list[list[Any]], stat: str = "Average") -> None:
        n = len(widgets)
        widgets.append(_widget(title, metrics, (n % 2) * 12, (n // 2) * 6, stat))

    def queue_metric(metric: str, logical_id: str) -> list[Any]:
        return ["AWS/SQS", metric, "QueueName", f"${{{logical_id}.QueueName}}"]

    if plan.queues:
        place("Queue depth", [queue_metric("ApproximateNumberOfMessagesVisible", queue_id(q, "Queue"))
                              for q in plan.queues], "Maximum")
        place("Age of oldest message (s)", [queue_metric("ApproximateAgeOfOldestMessage", queue_id(q, "Queue"))
                                            for q in plan.queues], "Maximum")
        place("Dead letters", [queue_metric("ApproximateNumberOfMessagesVisible", queue_id(q, "DeadLetterQueue"))
                               for q in plan.queues], "Maximum")
    services = [s for s in plan.services if s.name in stack.ecs_services]
    if services:
        names = [f"${{{service_id(s, 'Service')}.Name}}" for s in services]
        place("Service CPU (%)", [["AWS/ECS", "CPUUtilization", "ServiceName", n, "ClusterName", "${Cluster}"]
                                  for n in names])
        place("Service memory (%)", [["AWS/ECS", "MemoryUtilization", "ServiceName", n, "ClusterName",
                                      "${Cluster}"] for n in names])
        place("Running tasks", [["ECS/ContainerInsights", "RunningTaskCount", "ServiceName", n, "ClusterName",
                                 "${Cluster}"] for n in names], "Maximum")
    if stack.load_balancer is not None:
        lb = "${LoadBalancer.LoadBalancerFullName}"
        place("Load balancer 5xx", [["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", lb],
                                    ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", lb]], "Sum")
        place("Load balancer latency (s)", [["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", lb]],
              "p99")
    if plan.decisions.rds is not None:
        db = ["DBInstanceIdentifier", "${Database}"]
        place("Database CPU (%) and connections", [["AWS/RDS", "CPUUtilization", *db],
                                                   ["AWS/RDS", "DatabaseConnections", *db, {"yAxis": "right"}]])
        place("Database free storage (bytes)", [["AWS/RDS", "FreeStorageSpace", *db]], "Minimum")
    body = json.dumps({"widgets": widgets}, sort_keys=True, separators=(",", ":"))
    stack.add(cloudwatch.Dashboard("Dashboard", DashboardName=stack.name(), DashboardBody=Sub(body)),
              node=STACK, role="dashboard")
    stack.output("DashboardUrl", Sub("https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region="
                                     "${AWS::Region}#dashboards:name=${Dashboard}"), "CloudWatch dashboard.")
