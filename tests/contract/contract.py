"""Reading the contract fixtures: citations, field paths and JSON types.

A field path is dotted (`load_management.state`); `*` stands for every key of an object
(`conferences.*.name`). Types are JSON types: integer, number, string, boolean, object, array,
null, or a list of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).parent / "fixtures"
REPOSITORY = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
LINES = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
JSON_TYPES = {"integer", "number", "string", "boolean", "object", "array", "null"}


@cache
def load(name: str) -> Any:
    """A fixture file, parsed (YAML merge keys resolved)."""
    return yaml.safe_load((FIXTURES / name).read_text(encoding="utf-8"))


def endpoint(entry_id: str) -> dict[str, Any]:
    for entry in load("jvb_rest.yaml")["endpoints"]:
        if entry["id"] == entry_id:
            return dict(entry)
    raise KeyError(entry_id)


def citation_problems(source: object) -> list[str]:
    """What is wrong with one `source` mapping (empty when it is a proper citation)."""
    if not isinstance(source, Mapping):
        return [f"not a mapping: {source!r}"]
    problems: list[str] = []
    repo, commit, path = source.get("repository"), source.get("commit"), source.get("path")
    if not isinstance(repo, str) or not REPOSITORY.match(repo):
        problems.append(f"repository {repo!r} is not owner/name")
    if not isinstance(commit, str) or not COMMIT.match(commit):
        problems.append(f"commit {commit!r} is not a 40-hex commit")
    if not isinstance(path, str) or not path or path.startswith("/"):
        problems.append(f"path {path!r} is not a path inside the repository")
    lines, symbol = source.get("lines"), source.get("symbol")
    if lines is None and not symbol:
        problems.append("neither lines nor symbol")
    if lines is not None:
        text = str(lines)
        if not LINES.match(text):
            problems.append(f"lines {lines!r} is not like '12' or '3-9,14'")
        else:
            for part in text.split(","):
                first, _, last = part.partition("-")
                if last and int(last) < int(first):
                    problems.append(f"lines {part!r} run backwards")
    return problems


def sources_of(entry: Mapping[str, Any], key: str = "source") -> list[Any]:
    value = entry.get(key)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def field_citation(field: Mapping[str, Any], fields_source: object) -> object:
    """A response field's citation: its own `source`, or `line` in the response's file."""
    if "source" in field:
        return field["source"]
    if "line" in field and isinstance(fields_source, Mapping):
        return {**fields_source, "lines": str(field["line"])}
    return None


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")


def allowed_types(spec: Mapping[str, Any]) -> set[str]:
    declared = spec["type"]
    return set(declared) if isinstance(declared, list) else {declared}


def resolve(doc: object, path: str) -> Iterator[tuple[str, object]]:
    """Every (concrete path, value) the field path names in `doc`."""

    def walk(node: object, parts: list[str], prefix: str) -> Iterator[tuple[str, object]]:
        if not parts:
            yield prefix, node
            return
        head, rest = parts[0], parts[1:]
        if not isinstance(node, dict):
            return
        keys = list(node) if head == "*" else [head] if head in node else []
        for key in keys:
            yield from walk(node[key], rest, f"{prefix}.{key}" if prefix else key)

    yield from walk(doc, path.split("."), "")


def _parent_exists(doc: object, path: str) -> list[str]:
    """Concrete paths of the objects that should hold the last key of `path`."""
    parent, _, _ = path.rpartition(".")
    if not parent:
        return [""] if isinstance(doc, dict) else []
    return [p for p, v in resolve(doc, parent) if isinstance(v, dict)]


def field_problems(
    doc: object, fields: Mapping[str, Mapping[str, Any]], *, simulated: bool = False
) -> list[str]:
    """Where `doc` breaks the documented fields: missing, mistyped, or undocumented keys.

    A field is required unless it is `optional`; with `simulated=True` (the document comes from
    the simulated bridge or a hand-made example), fields marked `simulated: false` are not
    required either. Keys under an object that documents none of its members (e.g. the media
    internals of an endpoint) are not checked.
    """
    problems: list[str] = []
    for path, spec in fields.items():
        required = not spec.get("optional") and not (simulated and spec.get("simulated") is False)
        found = dict(resolve(doc, path))
        if required:
            holders = _parent_exists(doc, path)
            key = path.rpartition(".")[2]
            for holder in holders:
                concrete = f"{holder}.{key}" if holder else key
                if key != "*" and concrete not in found:
                    problems.append(f"{concrete}: missing")
        for concrete, value in found.items():
            kind = json_type(value)
            if kind not in allowed_types(spec) and not (
                kind == "integer" and "number" in allowed_types(spec)
            ):
                problems.append(f"{concrete}: {kind} {value!r}, documented {spec['type']}")
            if "enum" in spec and value not in spec["enum"]:
                problems.append(f"{concrete}: {value!r} not in {spec['enum']}")
    documented = set(fields)
    for path in documented:
        parent = path
        for concrete, value in resolve(doc, parent):
            if not isinstance(value, dict):
                continue
            members = {p for p in documented if p.rpartition(".")[0] == path}
            if not members or f"{path}.*" in members or fields[path].get("open"):
                continue
            for key in value:
                if f"{path}.{key}" not in documented:
                    problems.append(f"{concrete}.{key}: not documented")
    top = {p for p in documented if "." not in p}
    if isinstance(doc, dict) and top and "*" not in top:
        problems.extend(f"{key}: not documented" for key in doc if key not in top)
    return problems


def reduce_to(doc: object, paths: list[str]) -> object:
    """A copy of `doc` keeping only the given field paths (and the objects on the way)."""
    if not isinstance(doc, dict):
        return doc
    out: dict[str, Any] = {}
    for key, value in doc.items():
        rests: list[str] = []
        whole = False
        for path in paths:
            head, _, rest = path.partition(".")
            if head in ("*", key):
                if rest:
                    rests.append(rest)
                else:
                    whole = True
        if whole:
            out[key] = value
        elif rests:
            out[key] = reduce_to(value, rests)
    return out
