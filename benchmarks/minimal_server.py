"""The floor for B1 and B5: the smallest MCP stdio server that puts an S3 object.

One tool, ``put_object``, doing a raw boto3 ``put_object`` against ``$BENCH_ENDPOINT`` — what an
unguarded AWS MCP server does for the same request, with nothing rehearsed, diffed or stored. It
is built with the same ``mcp`` SDK as interlock and driven through the same client, so the ratio
of the two is interlock's own cost.
"""

from __future__ import annotations

import os

import boto3
from botocore.config import Config
from mcp.server.mcpserver import MCPServer

server = MCPServer(name="minimal-put", log_level="WARNING")
_s3 = boto3.client(
    "s3",
    region_name="us-east-1",
    endpoint_url=os.environ["BENCH_ENDPOINT"],
    config=Config(retries={"max_attempts": 1}),
)


@server.tool()
def put_object(bucket: str, key: str, body: str) -> dict[str, str]:
    """Put one object, now."""
    resp = _s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return {"etag": resp["ETag"]}


if __name__ == "__main__":
    server.run("stdio")
