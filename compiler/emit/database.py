"""Database: RDS PostgreSQL in the database subnets (standard) or an external one by reference (ultra).

Either way no credential is in the template: RDS keeps its master password in Secrets Manager, and the
external URL lives in an SSM SecureString or a Secrets Manager secret named by a parameter.
"""

from __future__ import annotations

from collections.abc import Callable

from troposphere import Equals, GetAtt, If, Not, Ref, Sub, ec2, rds

from .. import contract
from .manifest import STACK
from .stack import DatabaseRefs, Stack, ignore_lint, skip_checks, statement

PORT = 5432
MASTER_USER = "flowbuilder"
# The rule CDK uses so that a security group without real egress rules gets no default allow-all.
NO_EGRESS = ec2.SecurityGroupRule(CidrIp="255.255.255.255/32", IpProtocol="icmp", FromPort=252, ToPort=86,
                                  Description="Disallow all traffic")


def rds_postgres(stack: Stack) -> DatabaseRefs:
    plan, policy, network = stack.plan, stack.plan.decisions.rds, stack.network
    assert policy is not None
    assert network is not None and network.database_subnets is not None, "rds needs the new VPC's subnets"
    client = stack.add(ec2.SecurityGroup(
        "DatabaseClientSecurityGroup", GroupDescription="Members may connect to the database",
        VpcId=network.vpc_id, SecurityGroupEgress=[NO_EGRESS]), node=STACK, role="database")
    server = stack.add(ec2.SecurityGroup(
        "DatabaseSecurityGroup", GroupDescription="The database: PostgreSQL from its clients only",
        VpcId=network.vpc_id, SecurityGroupEgress=[NO_EGRESS]), node=STACK, role="database")
    stack.add(ec2.SecurityGroupIngress(
        "DatabaseIngressFromClients", GroupId=Ref(server), SourceSecurityGroupId=Ref(client), IpProtocol="tcp",
        FromPort=PORT, ToPort=PORT, Description="PostgreSQL from database clients"), node=STACK, role="database")
    stack.add(ec2.SecurityGroupEgress(
        "DatabaseClientEgress", GroupId=Ref(client), DestinationSecurityGroupId=Ref(server), IpProtocol="tcp",
        FromPort=PORT, ToPort=PORT, Description="PostgreSQL to the database"), node=STACK, role="database")
    subnets = stack.add(rds.DBSubnetGroup(
        "DatabaseSubnetGroup", DBSubnetGroupDescription=f"{plan.stack_name} database subnets",
        SubnetIds=network.database_subnets), node=STACK, role="database")
    performance: dict[str, object] = {}
    if policy.performance_insights:
        performance = {"EnablePerformanceInsights": True, "PerformanceInsightsRetentionPeriod": 7}
    database = stack.add(rds.DBInstance(
        # The major version only: RDS picks its default minor at create and AutoMinorVersionUpgrade moves it
        # on. A pinned minor would fall behind what RDS upgraded to, and CloudFormation cannot downgrade.
        "Database", Engine="postgres", EngineVersion=plan.database.engine_version,
        DBInstanceClass=policy.instance_class, DBName=plan.database.name,
        AllocatedStorage=str(plan.database.storage), MaxAllocatedStorage=plan.database.storage * 5,
        StorageType="gp3", StorageEncrypted=True, PubliclyAccessible=False,
        MasterUsername=MASTER_USER, ManageMasterUserPassword=True,
        MultiAZ=policy.multi_az, DeletionProtection=policy.deletion_protection,
        BackupRetentionPeriod=policy.backup_retention_days, CopyTagsToSnapshot=True,
        AutoMinorVersionUpgrade=True, DBSubnetGroupName=Ref(subnets), VPCSecurityGroups=[Ref(server)],
        EnableCloudwatchLogsExports=["postgresql"],
        DeletionPolicy="Snapshot", UpdateReplacePolicy="Snapshot", **performance), node=STACK, role="database")
    secret = GetAtt(database, "MasterUserSecret.SecretArn")
    host = GetAtt(database, "Endpoint.Address")
    port = GetAtt(database, "Endpoint.Port")
    read = [statement("ReadDatabaseCredentials", ["secretsmanager:GetSecretValue"], [secret])]
    stack.output("DatabaseEndpoint", host, "PostgreSQL host (private).")
    # RDS rotates the managed password every 7 days: tasks and functions get the secret's ARN, never the
    # password, and the runtime reads it for each new connection (re-reading it when authentication fails).
    env = [(contract.DB_HOST, host), (contract.DB_PORT, port), (contract.DB_NAME, plan.database.name),
           (contract.DB_SECRET_ARN, secret)]
    # cfn-lint's version data marks a bare major as deprecated; RDS takes it and picks the default minor (the
    # CDK's PostgresEngineVersion.VER_16 is "only a major version, without a specific minor version").
    ignore_lint(database, "W3691")
    skip_checks(database, (
        "CKV_AWS_161", "IAM database authentication is not used: the runtime signs in with the RDS-managed "
                       "master secret, read per connection so rotation never breaks it; IAM tokens would add a "
                       "15-minute token refresh and rds-db:connect grants per role for no gain here."),
                ("CKV_AWS_118", "Enhanced Monitoring is off: it needs a monitoring role and bills CloudWatch Logs "
                                "ingestion; CloudWatch's RDS metrics feed the dashboard, and prod turns on "
                                "Performance Insights."))
    if not policy.multi_az:
        skip_checks(database, ("CKV_AWS_157", f"Single-AZ by the profile's choice for {plan.environment}: a standby "
                                              "doubles the instance cost; the prod overlay turns Multi-AZ on."))
    return DatabaseRefs(
        container_env=env, container_secrets=[], lambda_env=env, inject_statements=[], read_statements=read,
        client_security_group=Ref(client), container_read_statements=read)


def external(stack: Stack) -> DatabaseRefs:
    plan = stack.plan
    stack.parameter("DatabaseUrlParameter", Type="String", Default=f"/{plan.app}/{plan.environment}/database-url",
                    AllowedPattern=r"^/[A-Za-z0-9_.\-/]+$",
                    ConstraintDescription="an SSM parameter name starting with /",
                    Description="SSM SecureString parameter (free) holding the PostgreSQL URL; used unless "
                                "DatabaseUrlSecretArn is set.")
    stack.parameter("DatabaseUrlSecretArn", Type="String", Default="",
                    AllowedPattern=r"^$|^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$",
                    ConstraintDescription="empty, or a Secrets Manager secret ARN; never the URL itself",
                    Description="Secrets Manager secret holding the PostgreSQL URL (USD 0.40/month), instead of "
                                "the SSM parameter.")
    stack.template.add_condition("DatabaseUrlInSecretsManager", Not(Equals(Ref("DatabaseUrlSecretArn"), "")))
    location = If("DatabaseUrlInSecretsManager", Ref("DatabaseUrlSecretArn"),
                  Sub("arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${DatabaseUrlParameter}"))
    # One statement for either store: only the action that matches the ARN's service can ever apply.
    read = [statement("ReadDatabaseUrl", ["ssm:GetParameters", "ssm:GetParameter", "secretsmanager:GetSecretValue"],
                      [location])]
    return DatabaseRefs(
        container_env=[], container_secrets=[(contract.DATABASE_URL, location)],
        lambda_env=[(contract.DATABASE_URL_SECRET, If("DatabaseUrlInSecretsManager", Ref("DatabaseUrlSecretArn"),
                                                      Ref("DatabaseUrlParameter"))),
                    (contract.DATABASE_URL_SOURCE, If("DatabaseUrlInSecretsManager", "secretsmanager", "ssm"))],
        inject_statements=read, read_statements=read)


GENERATORS: dict[str, Callable[[Stack], DatabaseRefs]] = {"rds": rds_postgres, "external": external}


def emit(stack: Stack) -> None:
    stack.database = GENERATORS["external" if stack.plan.decisions.rds is None else "rds"](stack)
