"""The starter flowbuilder.yaml that `fbc init` writes."""

from __future__ import annotations

import re

from .scalars import NAME_PATTERN
from .spec import API_VERSION

STARTER = """\
# yaml-language-server: $schema=./flowbuilder.schema.json
# Flow Builder application spec. Validate with `fbc validate`; reference: `fbc schema`.
apiVersion: {api_version}
kind: App
metadata:
  name: {name}
spec:
  region: {region}
  # How the spec becomes AWS resources: standard (RDS, load balancer, private subnets) for every environment
  # but dev, which runs ultra (nothing billed while idle; your PostgreSQL URL in SSM). --profile overrides.
  profile: standard
  runtime:
    image: {account}.dkr.ecr.{region}.amazonaws.com/{name}-runtime:0.1.0
    secrets:
      # One SSM SecureString per environment: ${{env}} becomes dev, staging, prod.
      API_KEYS: /{name}/${{env}}/api-keys
  database:
    engine: postgres
    version: "16"
    name: flowbuilder
  queues:
    workflow-requests:
      visibilityTimeout: 15m
      retention: 4d
      deadLetter: {{maxReceiveCount: 5}}
  services:
    api:
      type: web
      runtime: api
      port: 8000
      public: true
      healthCheck: /healthz
      scaling: {{min: 1, max: 2}}
    worker:
      type: worker
      runtime: worker
      queue: workflow-requests
      timeout: 10m
      scaling: {{max: 4}}
  schedules: {{}}
  environments:
    dev:
      profile: ultra
    prod:
      services:
        api: {{scaling: {{min: 2, max: 4}}}}
"""


def app_name(directory: str) -> str:
    """A DNS-label application name from a directory name: 'My_App' -> 'my-app'."""
    name = re.sub(r"[^a-z0-9-]+", "-", directory.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:32].rstrip("-")
    return name or "app"


def starter(name: str, region: str, account: str) -> str:
    if not re.match(NAME_PATTERN, name):
        raise ValueError(f"--name {name!r} is not a valid name (1-32 lowercase letters, digits and '-')")
    if not re.fullmatch(r"[0-9]{12}", account):
        raise ValueError(f"--account {account!r} is not a 12-digit AWS account ID")
    if not re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-[0-9]", region):
        raise ValueError(f"--region {region!r} is not an AWS region such as us-east-1")
    return STARTER.format(api_version=API_VERSION, name=name, region=region, account=account)
