"""The MCP boundary: what every tool call meets before its own argument model."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from interlock.server.app import build_server
from interlock.server.config import parse_config


@pytest.mark.parametrize(
    ("tool", "args", "where"),
    [
        ("put_ssm_parameter", {"name": "/a", "value": "x\ud800", "type": "String"}, "value"),
        ("delete_ssm_parameters", {"names": ["/a", "b\udc00"]}, "names[1]"),
        (
            "update_lambda_function_configuration",
            {"function": "f", "environment": {"K": "\ud800"}},
            "environment",
        ),
        (
            "put_s3_object",
            {"bucket": "site", "key": "a", "body": "b", "metadata": {"m": "\udfff"}},
            "metadata",
        ),
    ],
)
async def test_a_lone_surrogate_anywhere_in_a_call_is_refused_before_any_tool_runs(
    tool: str, args: dict[str, object], where: str, tmp_path: Path
) -> None:
    """A lone surrogate is not text: no API can carry it, and pydantic's own message quoting it
    cannot be encoded. Every tool's call is refused at the boundary, naming where it is, in ASCII."""
    cfg = parse_config(
        f'[store]\npath = "{tmp_path / "db.sqlite"}"\n'
        '[targets.prod]\nkind = "aws"\nendpoint_url = "http://127.0.0.1:9"\n',
        "boundary config",
    )
    async with Client(build_server(cfg)) as client:
        result = await client.call_tool(tool, {**args, "reason": "test"})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "lone surrogate" in text and where in text and "nothing was called" in text
    text.encode("ascii")  # the message itself can be sent anywhere
