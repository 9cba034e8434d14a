"""Which resource types take the stack's tags, and in which shape: an explicit list.

CloudFormation's resource schemas decide which types have a Tags property (a list of Key/Value pairs, or a
map for some newer services, such as Pipes). troposphere's metadata follows its own releases and cfn-lint
1.51's schemas rejected Tags that troposphere offered (ListenerRule, Listener, ScalableTarget, Dashboard), so
the list is ours, and tests/test_build.py checks it against the schemas the pinned cfn-lint ships for every
type the compiler emits: a new type fails that test until it is listed here (or is untaggable).
"""

from __future__ import annotations

from typing import Literal

from troposphere import Tags

from .stack import Stack

Shape = Literal["list", "map"]

TAGGABLE: dict[str, Shape] = {
    "AWS::ApplicationAutoScaling::ScalableTarget": "list",
    "AWS::CloudFront::Distribution": "list",
    "AWS::CloudWatch::Alarm": "list",
    "AWS::CloudWatch::Dashboard": "list",
    "AWS::EC2::EIP": "list",
    "AWS::EC2::Instance": "list",
    "AWS::EC2::InternetGateway": "list",
    "AWS::EC2::NatGateway": "list",
    "AWS::EC2::RouteTable": "list",
    "AWS::EC2::SecurityGroup": "list",
    "AWS::EC2::Subnet": "list",
    "AWS::EC2::VPC": "list",
    "AWS::ECS::Cluster": "list",
    "AWS::ECS::Service": "list",
    "AWS::ECS::TaskDefinition": "list",
    "AWS::ElasticLoadBalancingV2::Listener": "list",
    "AWS::ElasticLoadBalancingV2::ListenerRule": "list",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "list",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "list",
    "AWS::IAM::Role": "list",
    "AWS::KMS::Key": "list",
    "AWS::Lambda::Function": "list",
    "AWS::Logs::LogGroup": "list",
    "AWS::Pipes::Pipe": "map",
    "AWS::RDS::DBInstance": "list",
    "AWS::RDS::DBSubnetGroup": "list",
    "AWS::S3::Bucket": "list",
    "AWS::SNS::Topic": "list",
    "AWS::SQS::Queue": "list",
}


def tag(stack: Stack) -> None:
    """Tag every resource of a listed type with app/environment/profile/managed-by and the spec's labels,
    unless its generator set tags of its own."""
    pairs = dict(stack.plan.tags)
    for resource in stack.template.resources.values():
        shape = TAGGABLE.get(resource.resource_type)
        if shape is None or "Tags" in resource.properties:
            continue
        resource.Tags = dict(pairs) if shape == "map" else Tags(**pairs)
