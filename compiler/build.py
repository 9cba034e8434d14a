"""The whole pipeline, top to bottom: load -> validate -> resolve profile -> plan -> emit -> files."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from . import load
from .diagnostics import Diagnostic, Invalid
from .emit import MAX_INLINE_BYTES, Built, Manifest, emit
from .files import write_atomic
from .plan import Plan, make_plan
from .profiles import choose, resolve
from .validate import validate_document

Format = Literal["json", "yaml"]


@dataclass(frozen=True)
class Compiled:
    plan: Plan
    built: Built
    warnings: tuple[Diagnostic, ...] = ()  # located, for the user to read (build prints them)

    @property
    def manifest(self) -> Manifest:
        """What each resource of the template serves and does: what cost and graph read (emit.manifest)."""
        return self.built.manifest

    def template_text(self, fmt: Format) -> str:
        if fmt == "json":
            return self.built.body
        data = json.loads(self.built.body)
        return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, width=120, allow_unicode=True)

    def parameters(self) -> list[dict[str, str]]:
        """A CloudFormation parameters file: every parameter with its default (empty: to provide)."""
        out = []
        for name, param in sorted(self.built.template.parameters.items()):
            default = param.properties.get("Default")
            out.append({"ParameterKey": name, "ParameterValue": "" if default is None else str(default)})
        return out

    def to_provide(self) -> list[str]:
        return sorted(n for n, p in self.built.template.parameters.items() if "Default" not in p.properties)

    def suppressions(self) -> list[tuple[str, str, str]]:
        """The checkov checks the template suppresses, from each resource's Metadata (checkov: skip:
        [{id, comment}], as emit's skip_checks writes them): (logical ID, check ID, reason), sorted."""
        out = []
        for logical_id, resource in json.loads(self.built.body).get("Resources", {}).items():
            for skip in (resource.get("Metadata") or {}).get("checkov", {}).get("skip", []):
                out.append((logical_id, str(skip.get("id")), str(skip.get("comment", ""))))
        return sorted(out)

    def suppression_summary(self) -> str:
        """One line for `fbc build`: how many checks are suppressed where (no checkov run: counted)."""
        found = self.suppressions()
        if not found:
            return "checkov: no checks suppressed"
        checks, resources = len(found), len({logical_id for logical_id, _, _ in found})
        return (f"checkov: {checks} check{'s' * (checks != 1)} suppressed in {resources} "
                f"resource{'s' * (resources != 1)} (reasons in each resource's Metadata)")

    def summary(self) -> str:
        template = self.built.template
        types = Counter(r.resource_type for r in template.resources.values())
        size = len(json.dumps(json.loads(self.built.body), separators=(",", ":")).encode())
        lines = [f"{self.plan.stack_name}: {len(template.resources)} resources, {len(template.parameters)} "
                 f"parameters, {len(template.outputs)} outputs ({self.plan.profile} profile, "
                 f"{self.plan.environment})"]
        lines += [f"  {count:3d}  {kind}" for kind, count in sorted(types.items())]
        provide = self.to_provide()
        lines.append("parameters to provide: " + (", ".join(provide) if provide else "none (all have defaults)"))
        certificate = template.parameters.get("CertificateArn")
        if certificate is not None and certificate.properties.get("Default") == "":
            lines.append(f"HTTP only in {self.plan.environment}: no certificate (spec https.certificateArn, or "
                         f"--param CertificateArn=...), so API keys cross the internet in cleartext; prod "
                         f"requires one")
        if size > MAX_INLINE_BYTES:
            lines.append(f"template is {size} bytes minified, over CloudFormation's {MAX_INLINE_BYTES}-byte inline "
                         f"limit: deploying uploads it to S3 first (fbc apply does; run fbc bootstrap once)")
        return "\n".join(lines)


def _planned(spec_file: str | Path, profile_ref: str | None, environment: str) -> tuple[Plan, list[Diagnostic]]:
    doc = load.load_file(spec_file)
    ref = profile_ref or choose(doc.data, environment, None, Path(spec_file).parent).ref
    profile = resolve(ref, environment)
    result = validate_document(doc, environment=environment, profile=profile)
    if not result.valid or result.app is None:
        raise Invalid(result.diagnostics)
    return make_plan(result.app, profile, environment), result.diagnostics


def plan_spec(spec_file: str | Path, profile_ref: str | None, environment: str) -> Plan:
    """load -> validate -> resolve profile -> plan. `profile_ref` None: the spec's (choose_profile). Raises
    Invalid (located diagnostics) or ValueError (usage: unknown profile)."""
    return _planned(spec_file, profile_ref, environment)[0]


def compile_spec(spec_file: str | Path, profile_ref: str | None, environment: str) -> Compiled:
    """plan_spec, then emit; the spec's warnings travel with the result. Also raises LimitError."""
    plan, warnings = _planned(spec_file, profile_ref, environment)
    return Compiled(plan, emit(plan), tuple(warnings))


def write(compiled: Compiled, out_dir: str | Path, fmt: Format) -> list[Path]:
    """Render everything first, then write each file atomically."""
    out = Path(out_dir)
    stem = compiled.plan.stack_name
    files: dict[Path, str] = {
        out / f"{stem}.template.{fmt}": compiled.template_text(fmt),
        out / f"{stem}.parameters.json": json.dumps(compiled.parameters(), indent=2) + "\n",
    }
    for path, text in files.items():
        write_atomic(path, text)
    return list(files)
