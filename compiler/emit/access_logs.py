"""The load balancer's access logs in production (standard): an S3 bucket only Elastic Load Balancing writes
to, kept as long as the stack's logs.

Who may write differs by region. Regions opened before August 2022 deliver as a regional Elastic Load
Balancing account; newer ones as the log-delivery service. The policy names both where the account is known
(a statement naming the service is harmless in an older region), so a region missing from the table below
still works if it is a newer one, and fails at deploy with "Access Denied for bucket" if it is an older one.
"""

from __future__ import annotations

from typing import Any

from troposphere import GetAtt, Join, Ref, Sub, s3

from .manifest import STACK
from .stack import Stack, policy_document, skip_checks

# Elastic Load Balancing's log-writing account per region (AWS: "Enable access logs for your Application Load
# Balancer", step "Attach a policy to your S3 bucket"), for the regions opened before August 2022.
ELB_ACCOUNTS = {
    "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
    "us-west-2": "797873946194", "af-south-1": "098369216593", "ap-east-1": "754344448648",
    "ap-south-1": "718504428378", "ap-northeast-1": "582318560864", "ap-northeast-2": "600734575887",
    "ap-northeast-3": "383597477331", "ap-southeast-1": "114774131450", "ap-southeast-2": "783225319266",
    "ca-central-1": "985666609251", "eu-central-1": "054676820928", "eu-west-1": "156460612806",
    "eu-west-2": "652711504416", "eu-west-3": "009996457667", "eu-south-1": "635631232127",
    "eu-north-1": "897822967062", "me-south-1": "076674570225", "sa-east-1": "507241528517",
}
PREFIX = "alb"


def bucket(stack: Stack) -> Any:
    """The bucket and its policy; returns the bucket. Retained on stack delete and replacement: CloudFormation
    cannot delete a bucket that holds objects, and the logs are evidence worth keeping (they expire on the
    stack's log retention)."""
    plan = stack.plan
    logs = stack.add(s3.Bucket(
        "LoadBalancerLogsBucket", DeletionPolicy="Retain", UpdateReplacePolicy="Retain",
        # ALB writes access logs only to buckets under SSE-S3 (AES256), never SSE-KMS.
        BucketEncryption=s3.BucketEncryption(ServerSideEncryptionConfiguration=[s3.ServerSideEncryptionRule(
            ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(SSEAlgorithm="AES256"))]),
        PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True),
        OwnershipControls=s3.OwnershipControls(Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
        VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
        LifecycleConfiguration=s3.LifecycleConfiguration(Rules=[s3.LifecycleRule(
            Id="expire-access-logs", Status="Enabled",
            ExpirationInDays=plan.decisions.log_retention_days,
            NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(NoncurrentDays=1))])),
        node=STACK, role="logs")
    skip_checks(logs, ("CKV_AWS_18", "This bucket is itself the access log of the load balancer; logging its reads "
                                     "to another bucket would need a third, for little: only ELB writes here."))
    objects = Join("", [GetAtt(logs, "Arn"), f"/{PREFIX}/AWSLogs/", Ref("AWS::AccountId"), "/*"])
    writers: list[dict[str, Any]] = [
        {"Sid": "LogDeliveryWrites", "Effect": "Allow",
         "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": objects}]
    if plan.region in ELB_ACCOUNTS:
        writers.append({"Sid": "ElbAccountWrites", "Effect": "Allow",
                        "Principal": {"AWS": Sub(f"arn:${{AWS::Partition}}:iam::{ELB_ACCOUNTS[plan.region]}:root")},
                        "Action": "s3:PutObject", "Resource": objects})
    writers.append({"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                    "Resource": [GetAtt(logs, "Arn"), Join("", [GetAtt(logs, "Arn"), "/*"])],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    stack.add(s3.BucketPolicy("LoadBalancerLogsBucketPolicy", Bucket=Ref(logs),
                              PolicyDocument=policy_document(writers)), node=STACK, role="logs")
    return logs
