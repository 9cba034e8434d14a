"""Network: a new VPC (standard) or an existing one's public subnets (ultra)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from troposphere import Base64, GetAtt, GetAZs, Ref, Select, ec2

from ..naming import (
    Tier,
    nat_gateway_eip_id,
    nat_gateway_id,
    private_default_route_id,
    private_route_table_id,
    subnet_association_id,
    subnet_id,
)
from .manifest import STACK, Role
from .stack import NetworkRefs, Stack

VPC_CIDR = ipaddress.ip_network("10.0.0.0/16")
# /24 public subnets from 10.0.0.0, /20 private from 10.0.16.0, /24 database from 10.0.128.0.
NAT_INSTANCE_TYPE = "t4g.nano"
# Resolved by EC2 when an instance launches, not by CloudFormation on every stack operation: a newly
# published AMI changes nothing in the template, so it never replaces the running NAT.
NAT_AMI = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
# Forwarding and masquerading come first, from the kernel and nftables, before anything that can fail (the
# instance may boot before its Elastic IP is attached, so a package install can fail for minutes); making
# them survive a reboot comes last. Whether AL2023's image ships the nft tool is not stated in AWS's docs,
# so iptables (installed with retries) masquerades when nft cannot.
NAT_USER_DATA = """#!/bin/bash
sysctl -w net.ipv4.ip_forward=1
sysctl -w net.ipv4.conf.all.send_redirects=0
iface=$(ip route show default | awk '{print $5; exit}')
masquerading=no
if command -v nft >/dev/null 2>&1 \\
  && nft add table ip nat \\
  && nft 'add chain ip nat postrouting { type nat hook postrouting priority 100 ; }' \\
  && nft add rule ip nat postrouting oifname "$iface" masquerade; then
  masquerading=nft
fi
for attempt in $(seq 1 30); do
  dnf install -y iptables-services && break
  sleep 10
done
if [ "$masquerading" = no ]; then
  iptables -t nat -A POSTROUTING -o "$iface" -j MASQUERADE
  iptables -F FORWARD
fi
printf 'net.ipv4.ip_forward = 1\\nnet.ipv4.conf.all.send_redirects = 0\\n' > /etc/sysctl.d/90-nat.conf
if [ "$masquerading" = nft ]; then
  nft list ruleset > /etc/sysconfig/nftables.conf && systemctl enable nftables
else
  service iptables save && systemctl enable iptables
fi
"""


# The manifest says each subnet's tier, so what sits in a subnet is placed without reading logical IDs.
TIER_ROLES: dict[Tier, Role] = {"Public": "public-subnet", "Private": "private-subnet",
                                "Database": "database-subnet"}


def _subnets(stack: Stack, tier: Tier, prefix: int, first: int) -> list[tuple[int, ec2.Subnet]]:
    """(zone number, subnet) for each availability zone."""
    subnets = []
    base = VPC_CIDR.network_address
    size = 2 ** (32 - prefix)
    for az in range(stack.plan.decisions.network.az_count):
        cidr = ipaddress.ip_network(f"{base + (first + az) * size}/{prefix}")
        subnets.append((az + 1, stack.add(ec2.Subnet(
            subnet_id(tier, az + 1), VpcId=Ref("Vpc"), CidrBlock=str(cidr),
            AvailabilityZone=Select(az, GetAZs("")), MapPublicIpOnLaunch=False), node=STACK, role=TIER_ROLES[tier])))
    return subnets


def _route_table(stack: Stack, logical_id: str, tier: Tier, subnets: list[tuple[int, ec2.Subnet]]) -> ec2.RouteTable:
    table = stack.add(ec2.RouteTable(logical_id, VpcId=Ref("Vpc")), node=STACK, role="network")
    for n, subnet in subnets:
        stack.add(ec2.SubnetRouteTableAssociation(subnet_association_id(tier, n), SubnetId=Ref(subnet),
                                                  RouteTableId=Ref(table)), node=STACK, role="network")
    return table


def _nat_gateways(stack: Stack, public: list[ec2.Subnet], count: int) -> list[Ref]:
    gateways = []
    for i in range(count):
        eip = stack.add(ec2.EIP(nat_gateway_eip_id(i + 1), Domain="vpc", DependsOn="VpcGatewayAttachment"),
                        node=STACK, role="nat")
        gateway = stack.add(ec2.NatGateway(nat_gateway_id(i + 1), AllocationId=GetAtt(eip, "AllocationId"),
                                           SubnetId=Ref(public[i])), node=STACK, role="nat")
        gateways.append(Ref(gateway))
    return gateways


def _nat_instance(stack: Stack, public: list[ec2.Subnet]) -> Ref:
    """The cheapest way out for dev: one t4g.nano forwarding for the private subnets (no redundancy).

    The instance owns its network interface and the routes name the instance, so any replacement (a new
    instance type, new user data) works: CloudFormation creates the new instance, moves the Elastic IP and
    the routes to it, then deletes the old one. A pre-made interface at device index 0 could not be attached
    to the replacement while the old instance holds it, and every later update would fail."""
    group = stack.add(ec2.SecurityGroup(
        "NatInstanceSecurityGroup", GroupDescription="NAT instance: forwards traffic from the VPC",
        VpcId=Ref("Vpc"),
        SecurityGroupIngress=[ec2.SecurityGroupRule(IpProtocol="-1", CidrIp=str(VPC_CIDR),
                                                    Description="traffic to forward, from inside the VPC")],
        SecurityGroupEgress=[ec2.SecurityGroupRule(IpProtocol="-1", CidrIp="0.0.0.0/0",
                                                   Description="forwarded traffic to the internet")]),
        node=STACK, role="nat")
    template = stack.add(ec2.LaunchTemplate(
        "NatInstanceLaunchTemplate",
        LaunchTemplateData=ec2.LaunchTemplateData(
            ImageId=NAT_AMI,
            MetadataOptions=ec2.MetadataOptions(HttpTokens="required", HttpEndpoint="enabled"),
            BlockDeviceMappings=[ec2.LaunchTemplateBlockDeviceMapping(
                DeviceName="/dev/xvda", Ebs=ec2.EBSBlockDevice(Encrypted=True, VolumeType="gp3", VolumeSize=8,
                                                               DeleteOnTermination=True))])),
        node=STACK, role="nat")
    instance = stack.add(ec2.Instance(
        "NatInstance", InstanceType=NAT_INSTANCE_TYPE,
        LaunchTemplate=ec2.LaunchTemplateSpecification(
            LaunchTemplateId=Ref(template), Version=GetAtt(template, "LatestVersionNumber")),
        SubnetId=Ref(public[0]), SecurityGroupIds=[Ref(group)], SourceDestCheck=False,
        UserData=Base64(NAT_USER_DATA)), node=STACK, role="nat")
    # A stable address for the far ends that allow-list it; it follows a replaced instance.
    stack.add(ec2.EIP("NatInstanceEip", Domain="vpc", InstanceId=Ref(instance), DependsOn="VpcGatewayAttachment"),
              node=STACK, role="nat")
    return Ref(instance)


def new_vpc(stack: Stack) -> NetworkRefs:
    azs = stack.plan.decisions.network.az_count
    stack.add(ec2.VPC("Vpc", CidrBlock=str(VPC_CIDR), EnableDnsSupport=True, EnableDnsHostnames=True),
              node=STACK, role="network")
    stack.add(ec2.InternetGateway("InternetGateway"), node=STACK, role="network")
    stack.add(ec2.VPCGatewayAttachment("VpcGatewayAttachment", VpcId=Ref("Vpc"),
                                       InternetGatewayId=Ref("InternetGateway")), node=STACK, role="network")
    numbered_public = _subnets(stack, "Public", 24, 0)
    numbered_database = _subnets(stack, "Database", 24, 128)
    public, database = [s for _, s in numbered_public], [s for _, s in numbered_database]
    public_table = _route_table(stack, "PublicRouteTable", "Public", numbered_public)
    stack.add(ec2.Route("PublicDefaultRoute", RouteTableId=Ref(public_table), DestinationCidrBlock="0.0.0.0/0",
                        GatewayId=Ref("InternetGateway"), DependsOn="VpcGatewayAttachment"),
              node=STACK, role="network")
    # local routes only: the database never goes out
    _route_table(stack, "DatabaseRouteTable", "Database", numbered_database)

    nat = stack.plan.decisions.network.nat
    if nat == "none":
        # No private subnets: tasks run in the public ones with public IPs (as in an existing VPC), and
        # functions stay outside the VPC (decisions.refusals refuses RDS here, which they would need).
        stack.output("VpcId", Ref("Vpc"), "The VPC this stack created.")
        return NetworkRefs(
            vpc_id=Ref("Vpc"), task_subnets=[Ref(s) for s in public], public_subnets=[Ref(s) for s in public],
            database_subnets=[Ref(s) for s in database])
    numbered_private = _subnets(stack, "Private", 20, 1)
    private = [s for _, s in numbered_private]
    if nat == "instance":
        instance = _nat_instance(stack, public)
        targets = [{"InstanceId": instance}] * azs
    else:
        gateways = _nat_gateways(stack, public, azs if nat == "gateway-per-az" else 1)
        targets = [{"NatGatewayId": gateways[i % len(gateways)]} for i in range(azs)]
    for i, (n, subnet) in enumerate(numbered_private):
        table = _route_table(stack, private_route_table_id(n), "Private", [(n, subnet)])
        stack.add(ec2.Route(private_default_route_id(n), RouteTableId=Ref(table),
                            DestinationCidrBlock="0.0.0.0/0", **targets[i]), node=STACK, role="network")
    stack.output("VpcId", Ref("Vpc"), "The VPC this stack created.")
    return NetworkRefs(
        vpc_id=Ref("Vpc"), task_subnets=[Ref(s) for s in private], public_subnets=[Ref(s) for s in public],
        database_subnets=[Ref(s) for s in database])


def existing_vpc(stack: Stack) -> NetworkRefs:
    stack.parameter("VpcId", Type="AWS::EC2::VPC::Id", Description="The existing VPC to run tasks in.")
    stack.parameter("SubnetIds", Type="List<AWS::EC2::Subnet::Id>",
                    Description="Public subnets of that VPC (a route to an internet gateway); tasks get public IPs, "
                                "so no NAT is needed.")
    return NetworkRefs(vpc_id=Ref("VpcId"), task_subnets=Ref("SubnetIds"), public_subnets=Ref("SubnetIds"))


GENERATORS: dict[str, Callable[[Stack], NetworkRefs]] = {"new": new_vpc, "existing": existing_vpc}


def emit(stack: Stack) -> None:
    stack.network = GENERATORS[stack.plan.decisions.network.vpc](stack)

