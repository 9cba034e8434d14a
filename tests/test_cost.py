"""fbc cost on hand-computed cases: list prices from compiler/cost/prices.yaml, always-free allowances,
and usage that grows linearly with executions."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from conftest import REPO, run_fbc
from flowbuilder.compiler.build import compile_spec
from flowbuilder.compiler.cost.estimate import Estimate, apply_allowances, estimate, monthly_firings
from flowbuilder.compiler.cost.prices import Prices, price_book
from flowbuilder.compiler.cost.usage import Usage

SPEC = REPO / "flowbuilder.yaml"  # us-east-1


def cost_of(profile: str, env: str, usage: Usage | None = None, spec: Path = SPEC) -> Estimate:
    compiled = compile_spec(spec, profile, env)
    return estimate(compiled, Prices(price_book(), "us-east-1"), usage or Usage())


def lines(result: Estimate, resource: str) -> list[tuple[str, float]]:
    return [(line.meter, round(line.cost, 6)) for line in result.lines if line.resource == resource]


def test_standard_prod_bills_nat_gateways_load_balancer_and_multi_az_rds_at_list_price() -> None:
    result = cost_of("standard", "prod")
    # $0.045 an hour x 730 hours, one per zone, each with its Elastic IP at $0.005 an hour
    assert lines(result, "NatGateway1") == lines(result, "NatGateway2") == [("nat-gateway-hour", 32.85)]
    assert lines(result, "NatGateway1Eip") == [("public-ipv4-hour", 3.65)]
    # ALB: $0.0225 an hour; its two public addresses; LCUs for 2 public services x 100,000 new connections
    assert lines(result, "LoadBalancer") == [("alb-hour", 16.425), ("public-ipv4-hour", 7.3),
                                             ("alb-lcu-hour", round(200_000 / 90_000 * 0.008, 6))]
    # db.m7g.large Multi-AZ: twice $0.168 an hour; 20 GB gp3 twice $0.115; the RDS-managed secret $0.40
    assert lines(result, "Database") == [("rds-postgres-hour", 245.28), ("rds-gp3-gb-month", 4.6),
                                         ("secret-month", 0.4)]
    # 2 API tasks always running: 0.25 vCPU x $0.04048 + 0.5 GB x $0.004445, 730 hours each
    assert lines(result, "ApiService") == [("fargate-vcpu-hour", round(2 * 0.25 * 730 * 0.04048, 6)),
                                           ("fargate-gb-hour", round(2 * 0.5 * 730 * 0.004445, 6))]
    assert all(line.kind == "idle" for line in result.lines if line.resource in ("NatGateway1", "Database"))


def test_the_nat_instance_of_standard_dev_is_priced_with_its_volume() -> None:
    result = cost_of("standard", "dev")
    assert lines(result, "NatInstance") == [("ec2-hour", round(0.0042 * 730, 6)), ("ebs-gp3-gb-month", 0.64)]
    assert lines(result, "Database")[0] == ("rds-postgres-hour", round(0.016 * 730, 6))  # Single-AZ micro
    assert not any(line.resource.startswith("NatGateway") for line in result.lines)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_ultra_idle_cost_after_the_always_free_allowances_is_zero(env: str) -> None:
    result = cost_of("ultra", env)
    assert result.total("idle") > 0  # alarms, the sweeper, Pipes' polling: all within allowances
    assert result.total("idle", after=True) == pytest.approx(0, abs=1e-9)
    assert {a.meter for a in result.allowances} >= {"alarm-metric-month", "scheduler-invocation", "lambda-gb-second",
                                                    "sqs-request"}
    assert any("external database" in n.reason for n in result.not_priced)


@pytest.mark.parametrize("profile", ["standard", "ultra"])
def test_usage_cost_grows_linearly_with_executions(profile: str) -> None:
    totals = [cost_of(profile, "prod", Usage(executions_per_month=n, requests_per_month=0)).total("usage")
              for n in (0, 100_000, 200_000, 300_000)]
    steps = [b - a for a, b in itertools.pairwise(totals)]
    assert steps[0] > 0
    assert steps == pytest.approx([steps[0]] * 3, rel=1e-9)
    idle = {cost_of(profile, "prod", Usage(executions_per_month=n)).total("idle") for n in (0, 10**6)}
    assert len(idle) == 1  # idle does not move with traffic


def test_ultra_tasks_per_message_at_the_spot_discount() -> None:
    usage = Usage(executions_per_month=1000, avg_duration=120, spot_discount=0.6)
    result = cost_of("ultra", "prod", usage)
    vcpu = next(line for line in result.lines if line.resource == "WorkerPipe" and line.meter == "fargate-vcpu-hour")
    # (120 s + 30 s start-up) x 1000 tasks, 0.5 vCPU (prod overlay), at 40% of $0.04048
    assert vcpu.quantity == pytest.approx(1000 * 150 / 3600 * 0.5)
    assert vcpu.rate == pytest.approx(0.04048 * 0.4)
    short = cost_of("ultra", "prod", Usage(executions_per_month=1000, avg_duration=5))
    pipe = next(line for line in short.lines if line.resource == "WorkerPipe" and line.meter == "fargate-vcpu-hour")
    assert pipe.quantity == pytest.approx(1000 * 60 / 3600 * 0.5)  # Fargate's one-minute minimum


def test_cloudfront_bills_requests_and_bytes_within_its_always_free_tier() -> None:
    result = cost_of("ultra", "prod")
    # 2 public services x 100,000 HTTPS requests at $0.0100 per 10,000; 50 KB each = 10 GB at $0.085
    assert lines(result, "Distribution") == [("cloudfront-https-request", 0.2), ("cloudfront-data-out-gb", 0.85)]
    assert all(line.kind == "usage" and line.after == pytest.approx(0) for line in result.lines
               if line.resource == "Distribution")
    busy = cost_of("ultra", "prod", Usage(requests_per_month=15_000_000))  # 30M requests, 1,500 GB
    requests, data = (line for line in busy.lines if line.resource == "Distribution")
    assert requests.free == pytest.approx(10_000_000 * 0.000001) and requests.after == pytest.approx(20.0)
    assert data.free == pytest.approx(1000 * 0.085) and data.after == pytest.approx(500 * 0.085)
    assert {a.name for a in busy.allowances} >= {"CloudFront: 10M requests a month", "CloudFront: 1 TB out a month"}
    assert not any(line.resource == "Distribution" for line in cost_of("standard", "prod").lines)


def test_allowances_cover_idle_first_and_never_more_than_they_hold() -> None:
    result = cost_of("ultra", "prod", Usage(executions_per_month=5_000_000, requests_per_month=20_000_000))
    sqs = [line for line in result.lines if line.meter == "sqs-request"]
    assert sqs[0].kind == "idle" and sqs[0].free == pytest.approx(sqs[0].cost)
    assert sum(line.free / line.rate for line in sqs) == pytest.approx(1_000_000)
    assert result.total("usage", after=True) > 0


def test_schedule_firings_a_month() -> None:
    assert monthly_firings("rate(5 minutes)", "UTC") == 8760
    assert monthly_firings("cron(0 3 * * ? *)", "Europe/Berlin") == pytest.approx(365 / 12)
    assert monthly_firings("cron(0 9 ? * MON-FRI *)", "UTC") == pytest.approx(261 / 12)  # weekdays of 2027


def test_the_price_file_names_its_sources_and_date() -> None:
    book = price_book()
    for region in book.regions.values():
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", region.checked)
        for price in region.prices.values():
            assert price.source.startswith("https://aws.amazon.com/")
    assert 0 < book.fargate_spot_discount < 1


def test_cli_text_json_and_compare(tmp_path: Path) -> None:
    text = run_fbc("cost", "-f", str(SPEC), "--profile", "ultra", "--env", "prod")
    assert text.exit_code == 0, text.output
    assert "idle $0.00" in text.output and "NOT PRICED" in text.output and "ALWAYS-FREE" in text.output
    data = json.loads(run_fbc("cost", "-f", str(SPEC), "--env", "prod", "--format", "json").output)
    assert data["totals"]["all"]["list"] == pytest.approx(sum(line["list"] for line in data["lines"]), abs=0.01)
    assert all(line["source"].startswith("https://") for line in data["lines"])
    compared = run_fbc("cost", "-f", str(SPEC), "--env", "prod", "--compare", "standard,ultra")
    assert compared.exit_code == 0
    assert re.search(r"idle, after allowances\s+\$\d[\d,]*\.\d\d\s+\$0\.00", compared.output), compared.output


def test_a_region_without_prices_is_one_line() -> None:
    minimal = REPO / "tests" / "specs" / "minimal.yaml"  # eu-west-1
    refused = run_fbc("cost", "-f", str(minimal))
    assert refused.exit_code == 2
    assert refused.stderr.strip() == ("fbc: no prices for eu-west-1 (prices.yaml has us-east-1); pass "
                                      "--prices-region to estimate with another region's")
    assert run_fbc("cost", "-f", str(minimal), "--prices-region", "us-east-1").exit_code == 0
    bad = run_fbc("cost", "-f", str(SPEC), "--avg-duration", "soon")
    assert bad.exit_code == 2 and "--avg-duration 'soon'" in bad.stderr


def test_what_the_price_file_lacks_is_listed_not_guessed(tmp_path: Path) -> None:
    profile = tmp_path / "big.yaml"
    profile.write_text("apiVersion: flowbuilder.dev/v1alpha1\nkind: Profile\nmetadata: {name: big}\n"
                       "extends: standard\nspec:\n  database: {instanceClass: db.r6i.32xlarge}\n")
    result = estimate(compile_spec(SPEC, str(profile), "dev"), Prices(price_book(), "us-east-1"), Usage())
    assert not any(line.resource == "Database" for line in result.lines)
    assert [n.reason for n in result.not_priced if n.resource == "Database"] == [
        "rds-postgres-hour: no price for db.r6i.32xlarge in us-east-1"]
    shown = run_fbc("cost", "-f", str(SPEC), "--profile", str(profile))
    assert "Database (AWS::RDS::DBInstance): rds-postgres-hour: no price for db.r6i.32xlarge" in shown.output


def test_every_emitted_resource_type_has_a_pricer_or_a_reason() -> None:
    for spec in [SPEC, REPO / "tests" / "specs" / "full.yaml", REPO / "tests" / "specs" / "private-api.yaml"]:
        for profile in ("standard", "ultra"):
            for env in ("dev", "staging", "prod"):
                result = cost_of(profile, env, spec=spec)
                assert not [n for n in result.not_priced if n.reason == "no pricer for this resource type"], \
                    (spec.name, profile, env)
                assert all(line.rate > 0 and line.quantity >= 0 for line in result.lines)


def _profile(tmp_path: Path, base: str, spec: str) -> str:
    path = tmp_path / "recombined.yaml"
    path.write_text(f"apiVersion: flowbuilder.dev/v1alpha1\nkind: Profile\nmetadata: {{name: recombined}}\n"
                    f"extends: {base}\nspec:\n{spec}", "utf-8")
    return str(path)


def test_each_queue_a_pipe_reads_is_polled_while_idle_and_own_images_get_no_executions() -> None:
    result = cost_of("ultra", "prod", spec=REPO / "tests" / "specs" / "full.yaml")
    polls = 5 * 730 * 3600 / 20  # Pipes' five 20-second long polls, all month
    assert [(line.kind, line.meter, line.quantity) for line in result.lines if line.resource == "OrdersQueue"] == [
        ("idle", "sqs-fifo-request", polls)]  # orders is FIFO, read by order-sync's Pipe
    assert ("idle", "sqs-request", polls) in [(line.kind, line.meter, line.quantity) for line in result.lines
                                               if line.resource == "RequestsQueue"]
    # order-sync runs its own image on the orders queue: executions never reach it (as in standard, where its
    # ECS service is priced for its minimum tasks only), so its Pipe is listed, not priced as if they did.
    assert not [line for line in result.lines if line.resource == "OrderSyncPipe"]
    assert [n.reason for n in result.not_priced if n.resource == "OrderSyncPipe"] == [
        "one task per message of orders: their number is not assumed (executions go to the runtime worker)"]
    assert [line for line in result.lines if line.resource == "WorkerPipe"]


def test_a_load_balancer_in_an_existing_vpc_pays_for_two_zones_at_least(tmp_path: Path) -> None:
    profile = _profile(tmp_path, "ultra", "  web: {serving: load-balancer}\n")
    result = estimate(compile_spec(SPEC, profile, "prod"), Prices(price_book(), "us-east-1"), Usage())
    (addresses,) = [line for line in result.lines if line.resource == "LoadBalancer"
                    and line.meter == "public-ipv4-hour"]
    assert addresses.quantity == 2 * 730 and addresses.what.endswith("(at least 2)")  # SubnetIds has 2 or more


def test_environments_of_one_account_share_its_always_free_allowances() -> None:
    # ultra's Pipe keeps 5 long polls of 20 s on the runtime queue: 5 x 730 x 3600 / 20 = 657,000 requests a
    # month per stack, idle. Alone, SQS's 1M free requests cover them; dev and prod in one account poll
    # 1,314,000 times, and the 314,000 over cost 314,000 x $0.0000004 = $0.1256 a month, idle.
    alone = cost_of("ultra", "prod")
    assert alone.total("idle", after=True) == pytest.approx(0, abs=1e-9)
    dev, prod = (estimate(compile_spec(SPEC, "ultra", env), Prices(price_book(), "us-east-1"), Usage(),
                          allowances=False) for env in ("dev", "prod"))
    apply_allowances([dev, prod])
    assert dev.total("idle", after=True) == pytest.approx(0, abs=1e-9)  # dev is listed first: its polls are free
    assert prod.total("idle", after=True) == pytest.approx(314_000 * 0.0000004)
    used = [a.quantity for e in (dev, prod) for a in e.allowances if a.meter == "sqs-request"]
    assert sum(used) == 1_000_000
    assert dev.shared_with == ("flow-builder-prod",) and prod.shared_with == ("flow-builder-dev",)

    shown = run_fbc("cost", "-f", str(SPEC), "--profile", "ultra", "--env", "dev,prod")
    assert shown.exit_code == 0, shown.output
    assert ("ALL 2 STACKS IN ONE ACCOUNT (flow-builder-dev, flow-builder-prod), sharing its always-free allowances"
            in shown.output)
    assert "(idle $0.13, usage" in shown.output
    assert "assumed shared by flow-builder-dev, flow-builder-prod and nothing else in the account" in shown.output
    every = run_fbc("cost", "-f", str(SPEC), "--profile", "ultra", "--all-environments", "--format", "json")
    data = json.loads(every.output)
    assert data["allowancesSharedBy"] == ["flow-builder-dev", "flow-builder-prod"]  # the spec declares dev, prod
    assert data["totals"]["idle"]["afterAllowances"] == 0.13


def test_every_report_says_which_allowances_it_assumed_its_own() -> None:
    text = run_fbc("cost", "-f", str(SPEC), "--profile", "ultra", "--env", "prod").output
    assert ("AWS's always-free allowances are per account (per organization under AWS Organizations); those applied "
            "(CloudWatch: 10 alarm metrics;") in text
    assert "are assumed flow-builder-prod's alone in the account" in text
    data = json.loads(run_fbc("cost", "-f", str(SPEC), "--profile", "ultra", "--env", "prod", "--format",
                              "json").output)
    assert any("SQS: 1M requests a month" in a and "flow-builder-prod's alone" in a for a in data["assumptions"])


def test_a_rotated_kms_key_costs_a_dollar_more_for_each_of_its_first_two_rotations() -> None:
    # standard's alert key: $1 a month, and EnableKeyRotation (every 365 days): +$1 for each of the first two
    # rotated versions, which it keeps from day 730 on; later rotations add nothing. Steady state: $3.
    assert lines(cost_of("standard", "prod"), "AlertKey") == [("kms-key-month", 1.0), ("kms-key-rotation-month", 2.0)]
    assert price_book().regions["us-east-1"].prices["kms-key-rotation-month"].price == 1.0


def test_the_spot_discount_is_a_ceiling_so_the_report_shows_50_and_70_percent() -> None:
    # ultra prod's Pipe tasks: 10,000 x 60 s = 166.67 task-hours of 0.5 vCPU and 1 GB, on-demand
    # 83.33 x $0.04048 + 166.67 x $0.004445 = $3.37333 + $0.74083 = $4.11417; 20 points less discount: +$0.82283
    result = cost_of("ultra", "prod")
    assert result.at_spot_discount(0.7) == pytest.approx(result.total(after=True))
    assert result.at_spot_discount(0.5) - result.at_spot_discount(0.7) == pytest.approx(0.2 * 4.1141667, rel=1e-6)
    text = run_fbc("cost", "-f", str(SPEC), "--profile", "ultra", "--env", "prod").output
    assert (f"total after allowances at other discounts: ${result.at_spot_discount(0.5):,.2f} at 50%, "
            f"${result.total(after=True):,.2f} at 70%") in text
    assert not cost_of("standard", "prod").on_spot  # standard's workers run on-demand
