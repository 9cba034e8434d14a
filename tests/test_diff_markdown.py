"""fbc diff --format markdown (issue 16): the pull-request comment, as snapshots under tests/diff/markdown/, and
the README's example. Templates come from compiling real specs (tests/specs/minimal.yaml edited); the refused
profile switch from a stack deployed in moto's server.

After a reviewed change, rewrite the snapshots and the README's example:
    python tests/test_diff_markdown.py        (FBC_REGENERATE=1 pytest tests/test_diff_markdown.py does the same)
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, run_fbc
from flowbuilder.compiler.build import compile_spec
from flowbuilder.compiler.deploy.diff import TemplateDiff, ValueChange, diff_templates
from flowbuilder.compiler.deploy.markdown import LIMIT, SUMMARY_PREFIX, Context, render

SNAPSHOTS = REPO / "tests" / "diff" / "markdown"
REGENERATE = os.environ.get("FBC_REGENERATE") == "1"
MINIMAL = (REPO / "tests" / "specs" / "minimal.yaml").read_text("utf-8")
TINY = Context("tiny-dev", "dev", "ultra")


def matches(name: str, text: str) -> None:
    """`text` is the snapshot `name`, byte for byte (or becomes it when regenerating)."""
    path = SNAPSHOTS / name
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8", newline="\n")
    assert path.is_file(), f"no snapshot {name}: run python tests/test_diff_markdown.py"
    assert path.read_text("utf-8") == text, f"{name} changed: review, then run python tests/test_diff_markdown.py"


def variant(tmp_path: Path, name: str, edit: tuple[str, str] = ("", ""), extra: str = "") -> Path:
    """minimal.yaml with one text replaced and lines appended, as a file."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(MINIMAL.replace(*edit) + extra, "utf-8")
    return path


def template(path: Path, profile: str = "ultra") -> dict[str, Any]:
    return json.loads(compile_spec(path, profile, "dev").built.body)  # type: ignore[no-any-return]


def against(tmp_path: Path, before: dict[str, Any]) -> str:
    """The before template as a file for --against."""
    path = tmp_path / "before.json"
    path.write_text(json.dumps(before), "utf-8")
    return str(path)


def summary(text: str) -> dict[str, Any]:
    line = next(line for line in text.splitlines() if line.startswith(SUMMARY_PREFIX))
    return json.loads(line.removeprefix(SUMMARY_PREFIX).removesuffix(" -->"))  # type: ignore[no-any-return]


SERVICE = "    api: {type: web, runtime: api, port: 8000, public: true, healthCheck: /healthz}\n"
QUEUE = ("    jobs: {visibilityTimeout: 5m}\n", "    jobs: {visibilityTimeout: 5m}\n    extra: {}\n")
FIFO = ("    jobs: {visibilityTimeout: 5m}\n", "    jobs: {visibilityTimeout: 5m, fifo: true}\n")
MAIL_QUEUE = ("    jobs: {visibilityTimeout: 5m}\n", "    jobs: {visibilityTimeout: 5m}\n    mail: {}\n")
MAILER = ("    mailer: {type: worker, image: 210987654321.dkr.ecr.eu-west-1.amazonaws.com/tiny-mailer:1.0.0, "
          "queue: mail, timeout: 5m}\n")
SECRET = ("tiny-runtime:2.3.1}", "tiny-runtime:2.3.1, secrets: {API_KEYS: '/tiny/${env}/api-keys'}}")


# --- a stand-in for compiler/cost/delta.py's CostDelta (the renderer reads it through a Protocol) -------------

@dataclass(frozen=True)
class Line:
    logical_id: str
    type: str
    change: str
    before: float | None
    after: float | None

    @property
    def delta(self) -> float:
        return (self.after or 0.0) - (self.before or 0.0)


@dataclass(frozen=True)
class FakeCost:
    lines: list[Line]
    before_total: float
    after_total: float
    before_list: float
    after_list: float
    assumptions: list[str] = field(default_factory=list)
    not_priced: list[str] = field(default_factory=list)
    allowances: list[Line] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rounding: str = ""

    @property
    def delta(self) -> float:
        return self.after_total - self.before_total


# --- the snapshots ----------------------------------------------------------------------------------------------

def test_no_changes() -> None:
    same = template(REPO / "tests" / "specs" / "minimal.yaml")
    text = render(diff_templates(same, same), TINY)
    assert summary(text) == {"cost_delta": None, "exit": 0, "has_changes": False, "risky": False}
    assert "<details" not in text
    matches("no-changes.md", text)


def test_an_added_service_costs_more(tmp_path: Path) -> None:
    """Through the CLI, offline against the template before, with --cost: a second queue and a worker on it.
    Its Pipe's idle long polls (5 pollers, 20 s each: 657,000 requests a month) take the account past SQS's
    1M free requests."""
    before = template(variant(tmp_path, "before"))
    after = variant(tmp_path, "after", MAIL_QUEUE, MAILER)
    result = run_fbc("diff", "-f", str(after), "--profile", "ultra", "--against", against(tmp_path, before),
                     "--format", "markdown", "--cost", "--prices-region", "us-east-1")
    assert result.exit_code == 1, result.stderr
    assert result.stdout.startswith("<!-- flowbuilder:diff stack=tiny-dev -->\n")
    # The new service's roles are new access: risky, for a reviewer to read.
    assert summary(result.stdout) == {"cost_delta": "+0.14", "exit": 1, "has_changes": True, "risky": True}
    assert ("**10 to add, 0 to change, 0 replaced, 0 removed** · security: 20 broaden(s), 0 narrow(s), 3 checkov "
            "suppression(s) · cost") in result.stdout
    assert "cost +\\$0.14/month" in result.stdout  # \\$: not inline math on GitHub
    matches("added-service.md", result.stdout)

    shown = run_fbc("diff", "-f", str(after), "--profile", "ultra", "--against", against(tmp_path, before),
                    "--format", "json", "--cost", "--prices-region", "us-east-1")
    cost = json.loads(shown.stdout)["cost"]
    assert cost["delta"] == 0.14
    # At list price the new queue carries its own polls and the queue nobody touched stays as it was; what the
    # free tier no longer covers is its own row, and the rows add up to the total.
    lines = {line["logicalId"]: line for line in cost["resources"]}
    assert lines["MailQueue"]["change"] == "added" and lines["MailQueue"]["after"] > 0
    assert lines["JobsQueue"]["change"] == "unchanged" and lines["JobsQueue"]["delta"] == 0
    sqs = next(a for a in cost["allowances"] if a["name"].startswith("SQS"))
    assert sqs["coveredAfter"] > sqs["coveredBefore"]
    assert sum(line["delta"] for line in cost["resources"]) + sum(a["delta"] for a in cost["allowances"]) == (
        pytest.approx(cost["delta"], abs=0.02))
    told = run_fbc("diff", "-f", str(after), "--profile", "ultra", "--against", against(tmp_path, before),
                   "--cost", "--prices-region", "us-east-1")
    assert "Cost (USD/month, after the free tier): $" in told.stdout and "(+$0.14)" in told.stdout


def test_the_cost_section_reads_any_delta_of_that_shape() -> None:
    """The renderer reads compiler/cost/delta.py's CostDelta through a Protocol: a stand-in of that shape."""
    cost = FakeCost([Line("ApiFunction", "AWS::Lambda::Function", "added", None, 1.25),
                     Line("JobsQueue", "AWS::SQS::Queue", "unchanged", 0.13, 0.13),
                     Line("OldQueue", "AWS::SQS::Queue", "removed", 0.004, None)],
                    0.134, 1.38, 0.40, 2.10, ["10,000 executions a month of 30 s each"], ["ApiLogGroup: by volume"])
    text = render(TemplateDiff(), TINY, cost)
    assert summary(text) == {"cost_delta": "+1.25", "exit": 0, "has_changes": False, "risky": False}
    assert "**No changes** · cost +\\$1.25/month" in text
    assert "| `JobsQueue`" not in text  # unchanged lines are left out
    assert "Added, removed or changed at no cost: `OldQueue`." in text  # -0.004 is no cent
    assert ("Total after the free tier: \\$0.13 → \\$1.38 (**+\\$1.25/month**); at list price: \\$0.40 → "
            "\\$2.10.") in text
    assert "<summary>Cost delta (+$1.25/month)</summary>" in text  # HTML: no Markdown escapes
    assert "- ApiLogGroup: by volume" in text


def test_a_removal_with_a_replacement(tmp_path: Path) -> None:
    before = template(variant(tmp_path, "two", QUEUE))
    text = render(diff_templates(before, template(variant(tmp_path, "fifo", FIFO))), TINY)
    assert summary(text) == {"cost_delta": None, "exit": 1, "has_changes": True, "risky": True}
    gone = text.split("<details open><summary>Replacements and removals (5)</summary>")[1].split("</details>")[0]
    assert "- **remove** `ExtraQueue` (AWS::SQS::Queue)" in gone
    assert "- **replace** `JobsQueue` (AWS::SQS::Queue): `Properties.FifoQueue`, `Properties.QueueName`" in gone
    assert text.index("Replacements and removals") < text.index("Security changes") < text.index("Resource changes")
    matches("removal-and-replacement.md", text)


def test_an_iam_broadening(tmp_path: Path) -> None:
    before = template(variant(tmp_path, "before"))
    text = render(diff_templates(before, template(variant(tmp_path, "secret", SECRET))), TINY)
    assert summary(text)["risky"] is True
    assert "security: 3 broaden(s), 0 narrow(s)" in text
    assert ("- **broadens** [iam] `WorkerExecutionRole`: `Allow ssm:GetParameters on {\"Fn::Sub\":\"arn:"
            "${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/tiny/dev/api-keys\"}`") in text
    matches("iam-broadening.md", text)


def big_template() -> dict[str, Any]:
    """full.yaml's ultra template 4 times over (logical IDs suffixed): a diff whose comment is over the limit."""
    one = template(REPO / "tests" / "specs" / "full.yaml")
    text = json.dumps(one["Resources"])
    resources: dict[str, Any] = {}
    for i in range(4):
        copy = text
        for name in one["Resources"]:
            copy = re.sub(rf'"{name}"', f'"{name}{i:02d}"', copy)
        resources |= json.loads(copy)
    return {"Resources": resources}


def test_a_comment_over_githubs_limit_is_cut_from_the_least_important_section() -> None:
    diff = diff_templates(template(REPO / "tests" / "specs" / "minimal.yaml"), big_template())
    assert len(diff.security) > 500  # over 65,536 characters of security changes alone
    text = render(diff, TINY)
    assert len(text) <= LIMIT
    assert text.startswith("<!-- flowbuilder:diff stack=tiny-dev -->\n")
    assert summary(text) == {"cost_delta": None, "exit": 1, "has_changes": True, "risky": True}
    note = text.rstrip("\n").splitlines()[-1]
    # Cut from the least important: resources, then parameters (both gone), then security, row by row.
    cut = re.fullmatch(r"_Truncated to fit GitHub's 65,536-character comment limit: security changes \((\d+) of 566 "
                       r"shown\); resource changes \(none of 235 shown\); parameter, image and output changes \(none "
                       r"of 8 shown\)\. Run `fbc diff` for the whole diff\._", note)
    assert cut is not None, note
    shown = int(cut.group(1))
    assert 0 < shown < 566 and LIMIT - len(text) < 1_000  # as many rows as fit, not far under the limit
    assert "<details open><summary>Replacements and removals (23)</summary>" in text
    assert f"- … {566 - shown} more not shown" in text and "Resource changes" not in text
    matches("over-the-limit.md", text)


def test_a_refused_profile_switch_is_a_comment_too(moto_server: str, tmp_path: Path) -> None:
    from test_deploy import MINIMAL as SPEC
    from test_deploy import deployed_minimal, invoke

    env = deployed_minimal(moto_server, tmp_path)  # tiny-dev on ultra
    refused = invoke(env, "diff", "-f", str(SPEC), "--profile", "standard", "--format", "markdown")
    assert refused.exit_code == 2
    assert refused.stderr.splitlines()[-1] == (
        "fbc: tiny-dev runs the ultra profile; this would switch it to standard, deleting or replacing what is "
        "listed above: pass --change-profile to do so")
    assert summary(refused.stdout) == {"cost_delta": None, "exit": 2, "has_changes": True, "risky": True}
    assert "**Refused:** tiny-dev runs the ultra profile" in refused.stdout
    matches("profile-switch-refused.md", refused.stdout.replace(moto_server, "http://moto"))

    allowed = invoke(env, "diff", "-f", str(SPEC), "--profile", "standard", "--format", "markdown",
                     "--change-profile")
    assert allowed.exit_code == 1 and "Replacements and removals" in allowed.stdout
    assert summary(allowed.stdout)["exit"] == 1
    same = invoke(env, "diff", "-f", str(SPEC), "--profile", "ultra", "--format", "markdown", "--param",
                  "VpcId=vpc-0abc", "--param", "SubnetIds=subnet-1,subnet-2", "--cost", "--prices-region", "us-east-1")
    assert same.exit_code == 0, same.output  # priced against the deployed template: the same bill
    assert summary(same.stdout) == {"cost_delta": "+0.00", "exit": 0, "has_changes": False, "risky": False}
    assert "Total after the free tier: \\$1.45 → \\$1.45" in same.stdout


# --- properties -------------------------------------------------------------------------------------------------

def test_the_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    before = against(tmp_path, template(variant(tmp_path, "two", QUEUE)))
    after = str(variant(tmp_path, "secret", SECRET, SERVICE))
    runs = [run_fbc("diff", "-f", after, "--profile", "ultra", "--against", before, "--format", "markdown")
            for _ in range(2)]
    assert runs[0].exit_code == 1 and runs[0].stdout_bytes == runs[1].stdout_bytes


def test_no_secret_value_is_ever_shown(tmp_path: Path) -> None:
    """A parameter declared NoEcho, or named like a secret, shows as changed without its values."""
    before = template(variant(tmp_path, "before"))
    before["Parameters"]["Signing"] = {"Type": "String", "NoEcho": True, "Default": "hunter2"}
    result = run_fbc("diff", "-f", str(variant(tmp_path, "after")), "--profile", "ultra", "--against",
                     against(tmp_path, before), "--format", "markdown")
    assert result.exit_code == 1
    assert "hunter2" not in result.stdout
    assert "| declaration | `Signing` | (changed, value hidden) | (changed, value hidden) |" in result.stdout

    values = [ValueChange("DatabasePassword", "old-pw-1", "new-pw-2"), ValueChange("ApiToken", None, "tok-3"),
              ValueChange("Signing", "s-4", "s-5"), ValueChange("RuntimeImage", "repo:1", "repo:2")]
    text = render(TemplateDiff(values=values), Context("s", "dev", "ultra", secrets=frozenset({"Signing"})))
    assert not any(secret in text for secret in ("old-pw-1", "new-pw-2", "tok-3", "s-4", "s-5"))
    assert "| value | `RuntimeImage` | `repo:1` | `repo:2` |" in text


# --- the README's example ---------------------------------------------------------------------------------------

EXAMPLE = re.compile(r"(<!-- example:diff-markdown:start -->\n)(.*?)(<!-- example:diff-markdown:end -->)", re.S)
README_QUEUE = "  queues:\n", "  queues:\n    notifications: {visibilityTimeout: 15m}\n"
README_SERVICE = "  services:\n", ("  services:\n    notifier:\n      type: worker\n      image: 123456789012.dkr.ecr."
                                   "us-east-1.amazonaws.com/flow-builder-notifier:1.0.0\n      queue: notifications\n")


def readme_example(tmp_path: Path) -> str:
    """The comment for this repository's flowbuilder.yaml (ultra, dev) changed to add a queue and a service."""
    spec = REPO / "flowbuilder.yaml"
    before = json.loads(compile_spec(spec, "ultra", "dev").built.body)
    changed = tmp_path / "flowbuilder.yaml"
    changed.write_text(spec.read_text("utf-8").replace(*README_QUEUE, 1).replace(*README_SERVICE, 1), "utf-8")
    result = run_fbc("diff", "-f", str(changed), "--profile", "ultra", "--against", against(tmp_path, before),
                     "--format", "markdown", "--cost")
    assert result.exit_code == 1, result.stderr
    return result.stdout


def test_the_readme_shows_the_current_comment(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    found = EXAMPLE.search(readme)
    assert found, "README has no <!-- example:diff-markdown:start --> ... end block"
    current = readme_example(tmp_path)
    if REGENERATE:
        readme = EXAMPLE.sub(lambda m: m.group(1) + current + m.group(3), readme)
        (REPO / "README.md").write_text(readme, "utf-8", newline="\n")
        found = EXAMPLE.search(readme)
        assert found
    assert found.group(2) == current, "README's diff comment is stale: run python tests/test_diff_markdown.py"


if __name__ == "__main__":
    os.environ["FBC_REGENERATE"] = "1"
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))


def test_cost_in_a_region_without_prices_leaves_the_review_without_cost(tmp_path: Path) -> None:
    """The tiny spec is in eu-west-1, which the price file lacks: the comment is still written (no cost, a note
    saying why) so a pull request's review does not fail over an estimate; a --prices-region it lacks is an
    error."""
    before = template(variant(tmp_path, "before"))
    after = variant(tmp_path, "after", MAIL_QUEUE, MAILER)
    result = run_fbc("diff", "-f", str(after), "--profile", "ultra", "--against", against(tmp_path, before),
                     "--format", "markdown", "--cost")
    assert result.exit_code == 1, result.stderr
    assert summary(result.stdout)["cost_delta"] is None and "Cost delta" not in result.stdout
    assert "cost not estimated: no prices for eu-west-1" in result.stdout
    assert "fbc: cost not estimated: no prices for eu-west-1" in result.stderr
    refused = run_fbc("diff", "-f", str(after), "--profile", "ultra", "--against", against(tmp_path, before),
                      "--format", "markdown", "--cost", "--prices-region", "xx-nowhere-1")
    assert refused.exit_code == 2 and "no prices for xx-nowhere-1" in refused.stderr


def test_template_text_cannot_write_html_or_mention_anyone(tmp_path: Path) -> None:
    """The template compared with may come from the pull request: a parameter's description and a policy action
    that try to close the code span they are shown in (a run of backticks), close sections, open a fake one
    and @mention someone. Parsed as GitHub does (CommonMark and tables), the comment's only HTML is its own and
    no text mentions anyone."""
    from markdown_it import MarkdownIt

    after = template(REPO / "tests" / "specs" / "minimal.yaml")
    before = json.loads(json.dumps(after))
    hostile = "x`` </details></details><details open><summary>fake</summary> @octocat | <!-- ``"
    before["Parameters"]["Hostile"] = {"Type": "String", "Description": hostile, "Default": hostile}
    role = next(r for r in before["Resources"].values() if r["Type"] == "AWS::IAM::Role" and r["Properties"].get(
        "Policies"))
    role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "s3:Get``Object </details> @octocat ``", "Resource": "*"})
    text = render(diff_templates(before, after), TINY)

    def walk(tokens: list[Any]) -> Any:
        for token in tokens:
            yield token
            yield from walk(token.children or [])

    tokens = list(walk(MarkdownIt("commonmark").enable("table").parse(text)))
    html = {t.content.strip() for t in tokens if t.type in ("html_inline", "html_block")}
    ours = re.compile(r"<!-- flowbuilder:(diff|summary) .*-->|</details>|<details( open)?><summary>[A-Z][\w ,]+ "
                      r"\(\d+\)</summary>")
    assert all(ours.fullmatch(h) for h in html), html
    assert "<summary>fake" not in "".join(html)
    assert not [t.content for t in tokens if t.type == "text" and "@octocat" in t.content]
    assert any("octocat" in t.content for t in tokens if t.type == "code_inline")  # shown, as code


def test_a_cut_cost_section_keeps_its_totals_and_assumptions() -> None:
    """Over the limit the cost rows may go, but not the totals and the allowances assumed (every cost report
    says which allowances it took as its own)."""
    diff = diff_templates(template(REPO / "tests" / "specs" / "minimal.yaml"), big_template())
    lines = [Line(f"Queue{n:04}", "AWS::SQS::Queue", "added", None, 0.40) for n in range(3000)]
    cost = FakeCost(lines, 1.0, 1201.0, 2.0, 1202.0, ["AWS's always-free allowances are per account"])
    text = render(diff, TINY, cost)
    assert len(text) <= LIMIT
    section = text.split("<summary>Cost delta (+$1,200.00/month)</summary>")[1].split("</details>")[0]
    assert "more not shown" in section
    assert "Total after the free tier: \\$1.00 → \\$1,201.00" in section
    assert "- AWS's always-free allowances are per account" in section


def test_a_template_without_fbcs_record_costs_nothing_more_and_says_so(tmp_path: Path) -> None:
    """A stack deployed by an fbc older than the record in Metadata: the same resources are priced with the new
    build's record, so an unchanged spec costs +$0.00, and the comment says why the old side was priced so."""
    spec = variant(tmp_path, "same")
    old = template(spec)
    old.pop("Metadata", None)
    result = run_fbc("diff", "-f", str(spec), "--profile", "ultra", "--against", against(tmp_path, old),
                     "--format", "markdown", "--cost", "--prices-region", "us-east-1")
    assert summary(result.stdout)["cost_delta"] == "+0.00", result.stdout
    assert "**Warning:**\n- the old template carries no fbc record" in result.stdout
