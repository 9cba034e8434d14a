"""One origin for the web services Lambda serves (ultra): a CloudFront distribution in front of every public
function URL, the service at "/" as the default behaviour and each other public service under its path
("/api" and "/api/*"). The frontend then reaches the API on its own origin (relative URLs, no CORS, no API
address to pass), and nothing is billed while idle (requests and bytes only; CloudFront's always-free tier).

Every behaviour disables caching and forwards what the viewer sent except Host (AWS's managed CachingDisabled
and AllViewerExceptHostHeader policies): Authorization (the API's bearer keys), query strings, cookies and
bodies reach the function unchanged, and the function URL sees its own domain as Host, as it requires.

The function URLs stay public (AuthType NONE) and keep answering directly. Origin access control would make
them private to CloudFront, but it signs each origin request itself: it overwrites the viewer's
Authorization header (the API keys), and Lambda then needs every POST/PUT body's SHA-256 in
x-amz-content-sha256 from the client. API clients could not keep working unchanged, so no OAC.
"""

from __future__ import annotations

from typing import Any

from troposphere import GetAtt, Join, Select, Split, cloudfront

from ..naming import service_id
from ..plan import Plan, ServicePlan
from .functions import TIMEOUT
from .manifest import STACK
from .stack import LimitError, Stack, skip_checks

# AWS-managed policies (the same IDs in every account): "Use managed cache policies" and "Use managed origin
# request policies" in the CloudFront Developer Guide.
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]
CACHED_METHODS = ["GET", "HEAD"]  # required by the schema; nothing is cached (TTLs are 0)
PRICE_CLASS = "PriceClass_100"  # edges in North America, Europe and Israel: the lowest request and byte prices
MAX_CACHE_BEHAVIORS = 75  # CloudFront's default quota per distribution
# The origin response timeout: CloudFront's standard maximum is 60 s (more needs a quota increase); the
# functions time out at TIMEOUT, so CloudFront waits as long as they may run.
ORIGIN_READ_TIMEOUT = min(TIMEOUT, 60)

# Why the checks that do not fit a zero-idle-cost stack of dynamic origins are suppressed (checkov's format,
# in the distribution's Metadata; `fbc diff` shows each added one).
SKIPPED_CHECKS = (
    ("CKV_AWS_68", "no AWS WAF web ACL: $5 a month per ACL plus $1 per rule and request fees would end zero idle "
                   "cost; the API checks bearer keys itself"),
    ("CKV_AWS_86", "no standard access logs: they need an S3 bucket (or billed CloudWatch Logs delivery); every "
                   "request reaching a function is logged in its own log group"),
    ("CKV_AWS_174", "the default certificate (*.cloudfront.net): CloudFront sets the security policy to TLSv1 "
                    "whatever MinimumProtocolVersion says; raising the minimum needs a custom domain with an ACM "
                    "certificate in us-east-1"),
)
# checkov (3.3) has these for Terraform only, so a suppression here would be stale; the same choices hold:
# CKV_AWS_305 no default root object (the origins are applications answering "/" themselves; a root object
# would rewrite "/" to a file they do not serve), CKV_AWS_310 no origin failover (one function URL per service
# in one region: there is no second origin, and origin groups fail over only GET, HEAD and OPTIONS),
# CKV_AWS_374 no geo restriction (clients anywhere; restricting countries is the application owner's call).


def fronted(plan: Plan) -> list[ServicePlan]:
    """The web services behind the distribution: every public one, when the profile serves from function URLs.
    One public service gets a distribution too: the stack's address then stays the same when a second one
    (a frontend) is added, and viewers get HTTPS redirects, HTTP/3 and IPv6 at no idle cost."""
    if plan.decisions.web_on_ecs:
        return []
    return [s for s in plan.web_services if s.public]


def default_service(services: list[ServicePlan]) -> ServicePlan:
    """The service at "/", else the one with the shortest path (it then answers unknown paths, with 404s)."""
    return min(services, key=lambda s: (s.path != "/", len(s.path), s.path))


def path_patterns(service: ServicePlan) -> list[str]:
    prefix = service.path.rstrip("/")
    return [prefix, f"{prefix}/*"]


def _origin_id(service: ServicePlan) -> str:
    """An origin's ID is its function URL's logical ID: unique per service, and says what it points at."""
    return service_id(service, "FunctionUrl")


def _behaviour(service: ServicePlan, **extra: Any) -> dict[str, Any]:
    return dict(TargetOriginId=_origin_id(service), ViewerProtocolPolicy="redirect-to-https",
                CachePolicyId=CACHING_DISABLED, OriginRequestPolicyId=ALL_VIEWER_EXCEPT_HOST_HEADER,
                AllowedMethods=ALL_METHODS, CachedMethods=CACHED_METHODS, Compress=False, **extra)


def emit(stack: Stack) -> None:
    services = fronted(stack.plan)
    if not services:
        return
    default = default_service(services)
    origins = []
    for service in services:
        url = GetAtt(stack.template.resources[service_id(service, "FunctionUrl")], "FunctionUrl")
        origins.append(cloudfront.Origin(
            Id=_origin_id(service), DomainName=Select(2, Split("/", url)),  # https://<domain>/ -> <domain>
            CustomOriginConfig=cloudfront.CustomOriginConfig(
                OriginProtocolPolicy="https-only", HTTPSPort=443, OriginSSLProtocols=["TLSv1.2"],
                OriginReadTimeout=ORIGIN_READ_TIMEOUT, OriginKeepaliveTimeout=5)))
    # First match wins: longer paths first, so /api/admin is matched before /api.
    behaviours = [cloudfront.CacheBehavior(**_behaviour(service, PathPattern=pattern))
                  for service in sorted(services, key=lambda s: (-len(s.path), s.path)) if service.path != "/"
                  for pattern in path_patterns(service)]
    if len(behaviours) > MAX_CACHE_BEHAVIORS:
        raise LimitError(f"{len(behaviours) // 2} public paths need {len(behaviours)} CloudFront cache behaviours; "
                         f"a distribution allows {MAX_CACHE_BEHAVIORS} without a quota increase")
    routes = ", ".join(f"{s.path} {s.name}" for s in sorted(services, key=lambda s: s.path))
    config: dict[str, Any] = dict(
        Enabled=True, Comment=f"{stack.name()}: {routes}"[:128], PriceClass=PRICE_CLASS, HttpVersion="http2and3",
        IPV6Enabled=True, Origins=origins, DefaultCacheBehavior=cloudfront.DefaultCacheBehavior(**_behaviour(default)),
        ViewerCertificate=cloudfront.ViewerCertificate(CloudFrontDefaultCertificate=True),
        Restrictions=cloudfront.Restrictions(GeoRestriction=cloudfront.GeoRestriction(RestrictionType="none")),
    )
    if behaviours:
        config["CacheBehaviors"] = behaviours
    distribution = cloudfront.Distribution("Distribution", DistributionConfig=cloudfront.DistributionConfig(**config))
    skip_checks(distribution, *SKIPPED_CHECKS)
    stack.add(distribution, node=STACK, role="ingress")
    domain = GetAtt(distribution, "DomainName")
    stack.output("AppUrl", Join("", ["https://", domain]), "The application's one public address (CloudFront): "
                                                            "every public web service under its path.")
    api = next((s for s in services if s.role == "api"), None)
    if api is not None:
        path = [api.path.rstrip("/")] if api.path != "/" else []
        stack.output("ApiUrl", Join("", ["https://", domain, *path]),
                     "Base URL of the Flow Builder API (through CloudFront).")
