"""Issue 15: ultra's network without VpcId/SubnetIds. fbc diff and apply take the account's default VPC and its
public subnets (a route to an internet gateway, one per zone), say what they picked, and later applies keep it
(the stack's parameters). Against moto's server over HTTP: moto has a default VPC in every region, but no
internet gateway on it (AWS's has one, and the 0.0.0.0/0 route in its main route table): `internet_routed`
adds what AWS has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_deploy import MINIMAL, clean_moto, client, fbc

SPEC = ["-f", str(MINIMAL), "--profile", "ultra"]


@pytest.fixture
def aws(moto_server: str, tmp_path: Path) -> dict[str, str]:
    return clean_moto(moto_server, tmp_path)


def default_vpc(ec2: Any) -> str:
    return str(ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"])


def internet_routed(ec2: Any, vpc: str) -> None:
    """The default VPC as AWS makes it: an internet gateway, routed to from the main route table."""
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                              {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
    ec2.create_route(RouteTableId=main["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)


def test_apply_without_network_parameters_uses_the_default_vpc_and_keeps_it(aws: dict[str, str]) -> None:
    ec2 = client(aws, "ec2")
    vpc = default_vpc(ec2)
    internet_routed(ec2, vpc)
    # A private subnet (its own route table, no gateway) in the default VPC is not picked.
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.200.0/24", AvailabilityZone="eu-west-1a")["Subnet"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=private["SubnetId"])
    subnets = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]}

    created = fbc(aws, "apply", *SPEC, "--yes")
    assert created.returncode == 0, created.stderr
    picked = ", ".join(f"{subnets[zone]} ({zone})" for zone in sorted(subnets))
    assert (f"network: the default VPC {vpc}, public subnets {picked}; later applies keep them (--param "
            f"VpcId=... --param SubnetIds=... to choose others)") in created.stderr
    assert private["SubnetId"] not in created.stderr
    stack = client(aws, "cloudformation").describe_stacks(StackName="tiny-dev")["Stacks"][0]
    deployed = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert deployed["VpcId"] == vpc

    # Later: the stack's values are kept, nothing is discovered again, nothing changes.
    again = fbc(aws, "apply", *SPEC)
    assert (again.returncode, again.stdout.strip()) == (0, "tiny-dev: no changes")
    assert "network:" not in again.stderr
    same = fbc(aws, "diff", *SPEC)
    assert (same.returncode, same.stdout.strip()) == (0, "no differences"), same.stderr


def test_diff_of_a_new_stack_says_what_it_picked(aws: dict[str, str]) -> None:
    ec2 = client(aws, "ec2")
    internet_routed(ec2, default_vpc(ec2))
    result = fbc(aws, "diff", *SPEC)
    assert result.returncode == 1
    assert f"network: the default VPC {default_vpc(ec2)}, public subnets subnet-" in result.stderr


def test_without_a_default_vpc_one_line_names_the_flags(aws: dict[str, str]) -> None:
    ec2 = client(aws, "ec2")
    ec2.delete_vpc(VpcId=default_vpc_emptied(ec2))
    result = fbc(aws, "apply", *SPEC, "--yes")
    assert (result.returncode, result.stderr) == (1, (
        "fbc: no default VPC in eu-west-1: pass --param VpcId=vpc-... --param SubnetIds=subnet-...,subnet-... (or "
        "create one: aws ec2 create-default-vpc)\n"))
    assert client(aws, "cloudformation").describe_stacks()["Stacks"] == []
    diff = fbc(aws, "diff", *SPEC)  # compares anyway (all of it is new), and warns of what apply would stop at
    assert diff.returncode == 1 and diff.stderr.startswith("warning: no default VPC in eu-west-1: pass --param")


def test_a_default_vpc_without_an_internet_route_has_no_public_subnet(aws: dict[str, str]) -> None:
    """moto's default VPC as it is: no internet gateway, so no subnet is public."""
    vpc = default_vpc(client(aws, "ec2"))
    result = fbc(aws, "apply", *SPEC, "--yes")
    assert (result.returncode, result.stderr) == (1, (
        f"fbc: VPC {vpc} has no public subnet (none routes to an internet gateway): pass --param "
        f"SubnetIds=subnet-...,subnet-...\n"))


def default_vpc_emptied(ec2: Any) -> str:
    """The default VPC with its subnets deleted, ready to delete."""
    vpc = default_vpc(ec2)
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    return vpc
