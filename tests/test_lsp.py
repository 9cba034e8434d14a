"""Editor support: the real yaml-language-server (npm, v2) reads our schema through the modeline and gives
completion, hover and diagnostics. .ci/run installs it into tests/lsp/node_modules."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import IN_CI, REPO
from lsp_client import LspClient

SERVER = REPO / "tests" / "lsp" / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
NODE = shutil.which("node")

if not (SERVER.exists() and NODE):
    if IN_CI:
        raise RuntimeError("yaml-language-server is not installed: run npm ci --prefix tests/lsp")
    pytest.skip("yaml-language-server not installed (npm ci --prefix tests/lsp)", allow_module_level=True)

DOC = """\
# yaml-language-server: $schema=./schema/flowbuilder.schema.json
apiVersion: flowbuilder.dev/v1alpha1
kind: App
metadata: {name: demo}
spec:
  region: us-east-1
  runtime: {image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/rt:1}
  queues:
    jobs:
      visibilityTimeout: 15m
      {queue_cursor}
  services:
    api:
      type: web
      runtime: api
      port: 8000
      prot: 1
      public: "yes"
      cpu: {cpu_cursor}
      {service_cursor}
  schedules:
    nightly:
      {schedule_cursor}
"""


def _position(marker: str) -> tuple[str, dict[str, int]]:
    """The document with every cursor marker removed, and where `marker` stood."""
    text = DOC
    for line_no, line in enumerate(text.splitlines()):
        if marker in line:
            position = {"line": line_no, "character": line.index(marker)}
            break
    for name in ("{queue_cursor}", "{cpu_cursor}", "{service_cursor}", "{schedule_cursor}"):
        text = text.replace(name, "")
    return text, position


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LspClient, str]]:
    root = tmp_path_factory.mktemp("workspace")
    (root / "schema").mkdir()
    shutil.copy(REPO / "schema" / "flowbuilder.schema.json", root / "schema" / "flowbuilder.schema.json")
    settings = {"yaml": {"validate": True, "hover": True, "completion": True, "schemaStore": {"enable": False}}}
    client = LspClient([str(NODE), str(SERVER), "--stdio"], settings)
    try:
        client.start(root)
        text, _ = _position("{queue_cursor}")
        uri = client.open(root / "flowbuilder.yaml", text)
        yield client, uri
    finally:
        client.close()


def _labels(result: Any) -> set[str]:
    items = result["items"] if isinstance(result, dict) else result
    return {item["label"] for item in items}


def _complete(server: tuple[LspClient, str], marker: str) -> set[str]:
    client, uri = server
    _, position = _position(marker)
    return _labels(client.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": position}))


def test_completes_queue_keys(server: tuple[LspClient, str]) -> None:
    assert {"fifo", "retention", "deadLetter", "delay"} <= _complete(server, "{queue_cursor}")


def test_completes_service_keys_for_its_type(server: tuple[LspClient, str]) -> None:
    labels = _complete(server, "{service_cursor}")
    assert {"healthCheck", "scaling", "image", "env", "secrets"} <= labels
    assert "queue" not in labels  # a web service: worker keys are not offered


def test_completes_enum_values(server: tuple[LspClient, str]) -> None:
    assert {"256", "512", "1024"} <= _complete(server, "{cpu_cursor}")


def test_completes_schedule_keys(server: tuple[LspClient, str]) -> None:
    assert {"cron", "rate", "timezone", "workflow", "input"} <= _complete(server, "{schedule_cursor}")


def test_hover_shows_our_description(server: tuple[LspClient, str]) -> None:
    client, uri = server
    text, _ = _position("{queue_cursor}")
    line = next(i for i, ln in enumerate(text.splitlines()) if "visibilityTimeout" in ln)
    hover = client.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                  "position": {"line": line, "character": 9}})
    assert "Must not be shorter than the timeout of the worker" in hover["contents"]["value"]


def test_diagnostics_flag_unknown_keys_and_wrong_types(server: tuple[LspClient, str]) -> None:
    client, uri = server
    messages = {d["message"]: d["range"]["start"]["line"] for d in client.wait_diagnostics(uri)}
    text, _ = _position("{queue_cursor}")
    lines = text.splitlines()
    assert messages["Property prot is not allowed."] == next(i for i, ln in enumerate(lines) if "prot:" in ln)
    assert any(m.startswith("Incorrect type. Expected \"boolean\"") for m in messages)
