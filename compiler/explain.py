"""`fbc explain PATH` (kubectl explain): one field of the spec's JSON Schema, read from the generated schema
(schema.app_schema(), or profile_schema() after a leading 'profile.') so that it says exactly what an editor
shows, not what a second walk over the pydantic models would make of them.

A path names properties from the document's root: spec.services.worker.scaling. A map's key (any valid name,
or '*') stands for every entry, and '*' steps into a list's items. $refs are followed and `anyOf` with null
read as "or null". Where the path passes the services' union (type: web | type: worker), every variant that
has the rest of the path is explained, unless `variant` (--type) picks one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .model_errors import did_you_mean

Schema = dict[str, Any]
PROFILE = "profile"  # a path's first segment that selects the profile schema
CONSTRAINTS = ("const", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
               "maxLength", "pattern", "minItems", "maxItems")


@dataclass(frozen=True)
class Child:
    name: str
    type: str
    summary: str  # the description's first sentence
    required: bool
    variants: tuple[str, ...] = ()  # the union's variants that have it so, when not every one does


@dataclass(frozen=True)
class Explanation:
    path: str  # '*' where the path named a map's key or a list's item
    variant: str | None  # 'type: worker' when the path passed the union and only this variant has it so
    type: str
    required: bool | None  # in its parent; None at the root, for a map's entry and a list's item
    default: Any
    has_default: bool
    constraints: tuple[Schema, ...]  # the schema's own keywords (CONSTRAINTS), one entry per alternative
    description: str
    about: tuple[str, ...]  # the referenced definitions' descriptions: 'WorkerScaling: Task count bounds ...'
    examples: tuple[Any, ...]
    keys: str | None  # a map's key pattern
    fields: tuple[Child, ...]  # an object's properties, or each entry's for a map
    variants: tuple[str, ...]  # the union's variants these fields come from (empty: no union)


@dataclass(frozen=True)
class _At:
    node: Schema  # as written in its parent (a property may be a $ref with its own description)
    path: tuple[str, ...]
    variant: str | None
    required: bool | None


def _ref_name(node: Schema) -> str:
    return str(node["$ref"]).rsplit("/", 1)[-1]


def first_sentence(text: str) -> str:
    return text.split(". ", 1)[0].rstrip(".") + "." if text else ""


class _Reader:
    """One schema, read for one --type choice (remembering whether the path met a union to apply it to)."""

    def __init__(self, schema: Schema, variant: str | None) -> None:
        self.definitions: dict[str, Schema] = schema.get("definitions", {})
        self.variant = variant
        self.met_union = False

    def resolve(self, node: Schema) -> Schema:
        """A $ref followed; the place's own keys (its description, its default) win over the definition's."""
        while "$ref" in node:
            own = {k: v for k, v in node.items() if k != "$ref"}
            node = {**self.definitions[_ref_name(node)], **own}
        return node

    def shapes(self, node: Schema) -> list[tuple[str | None, Schema]]:
        """What a value at `node` may be, resolved: a union's variants (labelled 'type: worker'), an anyOf's
        alternatives other than null, or the node itself."""
        node = self.resolve(node)
        tag = node.get("discriminator")
        if isinstance(tag, dict):
            key, mapping = str(tag["propertyName"]), dict(tag["mapping"])
            self.met_union = True
            if self.variant is not None and self.variant not in mapping:
                raise ValueError(f"--type {self.variant!r} is not a {key} here{did_you_mean(self.variant, mapping)}")
            return [(f"{key}: {value}", self.resolve({"$ref": ref})) for value, ref in mapping.items()
                    if self.variant in (None, value)]
        options = node.get("anyOf") or node.get("oneOf")
        if options:
            return [shape for option in options if option.get("type") != "null" for shape in self.shapes(option)]
        return [(None, node)]

    def type_of(self, node: Schema) -> str:
        if "$ref" in node:
            return f"{_ref_name(node)} ({self.type_of(self.definitions[_ref_name(node)])})"
        options = node.get("anyOf") or node.get("oneOf")
        if options:
            tag = node.get("discriminator")
            return " or ".join(self.type_of(o) for o in options) + (f", by {tag['propertyName']}" if tag else "")
        entry = _entry(node)
        if entry is not None:
            return f"map of {self.type_of(entry[1])}"
        kind = node.get("type")
        if kind == "array":
            return f"list of {self.type_of(node.get('items', {}))}"
        if kind == "object" and not node.get("properties") and node.get("additionalProperties", True) is True:
            return "object (any keys)"
        if isinstance(kind, list):
            return " or ".join(map(str, kind))
        return str(kind) if kind else "any"

    def about(self, node: Schema) -> tuple[str, ...]:
        """The descriptions of the definitions a field refers to, directly or as alternatives."""
        refs = [node] if "$ref" in node else [o for o in node.get("anyOf") or node.get("oneOf") or () if "$ref" in o]
        said = []
        for ref in refs:
            description = self.definitions[_ref_name(ref)].get("description", "")
            if description and description != self.resolve(node).get("description"):
                said.append(f"{_ref_name(ref)}: {description}")
        return tuple(said)

    def constraints(self, node: Schema) -> tuple[Schema, ...]:
        node = self.resolve(node)
        options = [self.resolve(o) for o in node.get("anyOf") or node.get("oneOf") or [node]]
        options = [o for o in options if o.get("type") != "null"]
        found = []
        for option in options:
            limits = {k: option[k] for k in CONSTRAINTS if k in option}
            if limits:
                found.append({"type": option.get("type", "any"), **limits} if len(options) > 1 else limits)
        return tuple(found)

    def fields(self, shapes: list[tuple[str | None, Schema]]) -> tuple[Child, ...]:
        """Every shape's properties, in order; a field that only some variants have (so) says which."""
        seen: dict[tuple[str, str, str, bool], list[str]] = {}
        for variant, shape in shapes:
            required = set(shape.get("required", ()))
            for name, prop in shape.get("properties", {}).items():
                summary = first_sentence(self.resolve(prop).get("description", ""))
                seen.setdefault((name, self.type_of(prop), summary, name in required), []).append(variant or "")
        labels = [variant for variant, _ in shapes if variant]
        return tuple(Child(*key, variants=tuple(v) if labels and len(v) < len(labels) else ())
                     for key, v in seen.items())

    def step(self, at: _At, segment: str) -> list[_At]:
        found = []
        for variant, shape in self.shapes(at.node):
            child = _child(shape, segment)
            if child is not None:
                node, name, required = child
                found.append(_At(node, (*at.path, name), variant or at.variant, required))
        return found

    def explain(self, at: _At) -> Explanation:
        tag = self.resolve(at.node).get("discriminator")
        if isinstance(tag, dict) and self.variant is not None:  # the union itself, --type chosen: that variant
            (label, _), = self.shapes(at.node)
            own = {k: v for k, v in self.resolve(at.node).items() if k == "description"}
            at = _At({"$ref": tag["mapping"][self.variant], **own}, at.path, label, at.required)
        node = at.node
        resolved = self.resolve(node)
        shapes = self.shapes(node)
        keys: str | None = None
        entry = next((e for e in map(_entry, (s for _, s in shapes)) if e is not None), None)
        if entry is not None:  # a map: what each entry holds
            keys, shapes = entry[0], self.shapes(entry[1])
        return Explanation(
            path=".".join(at.path), variant=at.variant, type=self.type_of(node), required=at.required,
            default=resolved.get("default"), has_default="default" in resolved,
            constraints=self.constraints(node), description=str(resolved.get("description", "")),
            about=self.about(node), examples=tuple(resolved.get("examples", ())), keys=keys,
            fields=self.fields(shapes), variants=tuple(v for v, _ in shapes if v))


def _entry(node: Schema) -> tuple[str | None, Schema] | None:
    """A map's key pattern (None: any key) and entry schema; None if `node` is not a map."""
    for pattern, value in node.get("patternProperties", {}).items():
        return str(pattern), value
    extra = node.get("additionalProperties")
    return (None, extra) if isinstance(extra, dict) else None


def _child(shape: Schema, segment: str) -> tuple[Schema, str, bool | None] | None:
    """The schema one segment below a resolved shape, its name in the canonical path, and whether it is
    required; None if the shape has no such field, key or item."""
    properties = shape.get("properties", {})
    if segment in properties:
        return properties[segment], segment, segment in shape.get("required", ())
    entry = _entry(shape)
    if entry is not None and (segment == "*" or entry[0] is None or re.search(entry[0], segment)):
        return entry[1], "*", None
    if shape.get("type") == "object" and not properties and shape.get("additionalProperties", True) is True:
        return {}, "*", None  # a free object (a workflow's input): any key, any value
    if "items" in shape and (segment == "*" or segment.isdigit()):
        return shape["items"], "*", None
    return None


def _refusal(reader: _Reader, places: list[_At], segment: str) -> str:
    where = ".".join(places[0].path) or "the document's root"
    shapes = [shape for at in places for _, shape in reader.shapes(at.node)]
    keys = [e[0] for e in map(_entry, shapes) if e is not None and e[0] is not None]
    if keys:
        return f"{where}: {segment!r} is not a valid key (keys match {keys[0]}; '*' stands for any)"
    names = {name for shape in shapes for name in shape.get("properties", {})}
    if reader.variant is not None:  # does a variant that --type left out have it?
        unchosen = _Reader({"definitions": reader.definitions}, None)
        has_it = sorted({at.variant or "" for place in places for at in unchosen.step(place, segment)})
        if has_it:
            return f"{where} has no field {segment!r} with --type {reader.variant} ({', '.join(has_it)} has it)"
    if names:
        return f"{where} has no field {segment!r}{did_you_mean(segment, names)}"
    return f"{where} ({reader.type_of(places[0].node)}) has no fields"


def explain(schema: Schema, path: str, variant: str | None = None, root: tuple[str, ...] = ()) -> list[Explanation]:
    """The field at `path` (dot-separated) of `schema`, once, or once per union variant where they differ;
    `root` prefixes the paths shown ('profile'). ValueError (exit 2) for a path the schema does not have, with
    a did-you-mean."""
    segments = path.strip().lstrip(".").split(".") if path.strip() else []
    if any(not s for s in segments):
        raise ValueError(f"{path!r}: an empty segment (two dots, or a dot at the end)")
    reader = _Reader(schema, variant)
    places = [_At(schema, root, None, None)]
    for segment in segments:
        found = [child for at in places for child in reader.step(at, segment)]
        if not found:
            raise ValueError(_refusal(reader, places, segment))
        places = found
    explained = [reader.explain(at) for at in places]
    if variant is not None and not reader.met_union:
        raise ValueError(f"--type {variant!r}: {path or 'the root'} passes no union of types to choose from")
    alike = {json.dumps(_as_dict(e) | {"variant": None}, sort_keys=True, default=str) for e in explained}
    if len(alike) == 1 and len(explained) > 1:  # the same in every variant: say it once
        explained = [Explanation(**{**vars(explained[0]), "variant": None})]
    return explained


def _as_dict(e: Explanation) -> dict[str, Any]:
    """camelCase, as the spec and the other verbs' JSON are; a default only where the schema has one."""
    out: dict[str, Any] = {"path": e.path, "variant": e.variant, "type": e.type, "required": e.required}
    if e.has_default:
        out["default"] = e.default
    out |= {"constraints": list(e.constraints), "description": e.description, "about": list(e.about),
            "examples": list(e.examples), "keys": e.keys, "variants": list(e.variants),
            "fields": [{"name": c.name, "type": c.type, "description": c.summary, "required": c.required,
                        "variants": list(c.variants)} for c in e.fields]}
    return out


def json_text(document: str, explained: list[Explanation]) -> str:
    return json.dumps({"document": document, "explanations": [_as_dict(e) for e in explained]}, indent=2)


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _constraint_text(limits: Schema) -> str:
    said = []
    if "const" in limits:
        said.append(f"exactly {_value(limits['const'])}")
    if "enum" in limits:
        said.append("one of " + ", ".join(map(_value, limits["enum"])))
    low, high = limits.get("minimum"), limits.get("maximum")
    if low is not None and high is not None:
        said.append(f"{low} to {high}")
    elif low is not None or high is not None:
        said.append(f"at least {low}" if low is not None else f"at most {high}")
    for key, word in (("exclusiveMinimum", "over"), ("exclusiveMaximum", "under")):
        if key in limits:
            said.append(f"{word} {limits[key]}")
    for low_key, high_key, unit in (("minLength", "maxLength", "characters"), ("minItems", "maxItems", "items")):
        low, high = limits.get(low_key), limits.get(high_key)
        if low is not None or high is not None:
            said.append(f"{low} to {high} {unit}" if low is not None and high is not None else
                        f"at least {low} {unit[:-1] if low == 1 else unit}" if low is not None else
                        f"at most {high} {unit[:-1] if high == 1 else unit}")
    if "pattern" in limits:
        said.append(f"pattern {limits['pattern']}")
    kind = f"{limits['type']}: " if "type" in limits else ""
    return kind + ", ".join(said)


def text(explained: list[Explanation]) -> str:
    return "\n\n".join(_one_text(e) for e in explained)


def _one_text(e: Explanation) -> str:
    lines = [f"FIELD:       {e.path or '(the document)'}"]
    if e.variant:
        lines.append(f"WHEN:        {e.variant}")
    lines.append(f"TYPE:        {e.type}")
    if e.required is not None:
        lines.append(f"REQUIRED:    {'yes' if e.required else 'no'}")
    if e.has_default:
        lines.append(f"DEFAULT:     {_value(e.default)}")
    if e.constraints:
        lines.append(f"ALLOWED:     {'; '.join(map(_constraint_text, e.constraints))}")
    if e.keys:
        lines.append(f"KEYS:        {e.keys}")
    if e.examples:
        lines.append(f"EXAMPLES:    {', '.join(map(_value, e.examples))}")
    if e.description or e.about:
        lines += ["DESCRIPTION:", *(f"  {line}" for line in (e.description, *e.about) if line)]
    if e.fields:
        title = "FIELDS of each entry" if e.keys is not None or e.type.startswith("map of") else "FIELDS"
        lines.append(f"{title}{' (' + ' | '.join(e.variants) + ')' if e.variants else ''}:")
        name_width = max(len(c.name) for c in e.fields)
        types = [c.type + (", required" if c.required else "") for c in e.fields]
        type_width = max(map(len, types))
        for child, kind in zip(e.fields, types, strict=True):
            only = f"[{' | '.join(child.variants)}] " if child.variants else ""
            lines.append(f"  {child.name:<{name_width}}  {kind:<{type_width}}  {only}{child.summary}".rstrip())
    return "\n".join(lines)


def document(path: str) -> tuple[str, str]:
    """Which schema a path reads ('App' or 'Profile') and the path within it."""
    head, _, rest = path.strip().lstrip(".").partition(".")
    return ("Profile", rest) if head == PROFILE else ("App", path)
