"""Network: a new VPC (standard) or an existing one's public subnets (ultra)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from troposphere import Base64, GetAtt, GetAZs, Ref, Select, ec2

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


def _subnets(stack: Stack, tier: str, prefix: int, first: int) -> list[ec2.Subnet]:
    subnets = []
    base = VPC_CIDR.network_address
    size = 2 ** (32 - prefix)
    for az in range(stack.plan.decisions.network.az_count):
        cidr = ipaddress.ip_network(f"{base + (first + az) * size}/{prefix}")
        subnets.append(stack.add(ec2.Subnet(
            f"{tier}Subnet{az + 1}", VpcId=Ref("Vpc"), CidrBlock=str(cidr),
            AvailabilityZone=Select(az, GetAZs("")), MapPublicIpOnLaunch=False)))
    return subnets


def _route_table(stack: Stack, logical_id: str, subnets: list[ec2.Subnet]) -> ec2.RouteTable:
    table = stack.add(ec2.RouteTable(logical_id, VpcId=Ref("Vpc")))
    for subnet in subnets:
        stack.add(ec2.SubnetRouteTableAssociation(f"{subnet.title}RouteTableAssociation",
                                                  SubnetId=Ref(subnet), RouteTableId=Ref(table)))
    return table


def _nat_gateways(stack: Stack, public: list[ec2.Subnet], count: int) -> list[Ref]:
    gateways = []
    for i in range(count):
        eip = stack.add(ec2.EIP(f"NatGateway{i + 1}Eip", Domain="vpc", DependsOn="VpcGatewayAttachment"))
        gateway = stack.add(ec2.NatGateway(f"NatGateway{i + 1}", AllocationId=GetAtt(eip, "AllocationId"),
                                           SubnetId=Ref(public[i])))
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
                                                   Description="forwarded traffic to the internet")]))
    template = stack.add(ec2.LaunchTemplate(
        "NatInstanceLaunchTemplate",
        LaunchTemplateData=ec2.LaunchTemplateData(
            ImageId=NAT_AMI,
            MetadataOptions=ec2.MetadataOptions(HttpTokens="required", HttpEndpoint="enabled"),
            BlockDeviceMappings=[ec2.LaunchTemplateBlockDeviceMapping(
                DeviceName="/dev/xvda", Ebs=ec2.EBSBlockDevice(Encrypted=True, VolumeType="gp3", VolumeSize=8,
                                                               DeleteOnTermination=True))])))
    instance = stack.add(ec2.Instance(
        "NatInstance", InstanceType=NAT_INSTANCE_TYPE,
        LaunchTemplate=ec2.LaunchTemplateSpecification(
            LaunchTemplateId=Ref(template), Version=GetAtt(template, "LatestVersionNumber")),
        SubnetId=Ref(public[0]), SecurityGroupIds=[Ref(group)], SourceDestCheck=False,
        UserData=Base64(NAT_USER_DATA)))
    # A stable address for the far ends that allow-list it; it follows a replaced instance.
    stack.add(ec2.EIP("NatInstanceEip", Domain="vpc", InstanceId=Ref(instance), DependsOn="VpcGatewayAttachment"))
    return Ref(instance)


def new_vpc(stack: Stack) -> NetworkRefs:
    azs = stack.plan.decisions.network.az_count
    stack.add(ec2.VPC("Vpc", CidrBlock=str(VPC_CIDR), EnableDnsSupport=True, EnableDnsHostnames=True))
    stack.add(ec2.InternetGateway("InternetGateway"))
    stack.add(ec2.VPCGatewayAttachment("VpcGatewayAttachment", VpcId=Ref("Vpc"),
                                       InternetGatewayId=Ref("InternetGateway")))
    public = _subnets(stack, "Public", 24, 0)
    database = _subnets(stack, "Database", 24, 128)
    public_table = _route_table(stack, "PublicRouteTable", public)
    stack.add(ec2.Route("PublicDefaultRoute", RouteTableId=Ref(public_table), DestinationCidrBlock="0.0.0.0/0",
                        GatewayId=Ref("InternetGateway"), DependsOn="VpcGatewayAttachment"))
    _route_table(stack, "DatabaseRouteTable", database)  # local routes only: the database never goes out

    nat = stack.plan.decisions.network.nat
    if nat == "none":
        # No private subnets: tasks run in the public ones with public IPs (as in an existing VPC), and
        # functions stay outside the VPC (decisions.refusals refuses RDS here, which they would need).
        stack.output("VpcId", Ref("Vpc"), "The VPC this stack created.")
        return NetworkRefs(
            vpc_id=Ref("Vpc"), task_subnets=[Ref(s) for s in public], public_subnets=[Ref(s) for s in public],
            database_subnets=[Ref(s) for s in database])
    private = _subnets(stack, "Private", 20, 1)
    if nat == "instance":
        instance = _nat_instance(stack, public)
        targets = [{"InstanceId": instance}] * azs
    else:
        gateways = _nat_gateways(stack, public, azs if nat == "gateway-per-az" else 1)
        targets = [{"NatGatewayId": gateways[i % len(gateways)]} for i in range(azs)]
    for i, subnet in enumerate(private):
        table = _route_table(stack, f"PrivateRouteTable{i + 1}", [subnet])
        stack.add(ec2.Route(f"PrivateDefaultRoute{i + 1}", RouteTableId=Ref(table),
                            DestinationCidrBlock="0.0.0.0/0", **targets[i]))
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

