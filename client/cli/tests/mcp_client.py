"""An MCP client written with the official Python MCP SDK (`pip install mcp`), driven by
client/cli/tests/it/mcp.rs against the real `atr mcp` server.

    python3 mcp_client.py [options] stdio ATR_PATH [ATR_ARGS...]
    python3 mcp_client.py [options] http URL

With --bearer TOKEN the HTTP requests carry `Authorization: Bearer TOKEN`. A session that
cannot be opened (e.g. the server answers 401) prints {"connect_error": [...messages...]} as
its last line and exits with 3.

It connects (mode `legacy`: the initialize handshake; `auto`: server/discover first, so
2026-07-28 when the server speaks it), lists the tools, makes the calls it is asked for
(--call with --args, then --bad-args that break the input schema and --fail-args on which the
tool itself fails) and prints one JSON object with what it saw on the last stdout line: for
each call `isError`, the text blocks, the structured content (which the SDK has validated
against the tool's outputSchema) and `_meta` (where atr puts the receipt). The Rust test asserts on it.
With --wait-change it prints `READY` once it listens for `notifications/tools/list_changed`,
waits for one, lists again and reports the new list under "changed".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import anyio

try:
    import mcp_types as types
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.client.stdio import StdioServerParameters
    from mcp.shared.exceptions import MCPError
except ImportError as e:  # the Rust test turns this exit code into a skip (or a failure in CI)
    print(f"mcp SDK not importable: {e}", file=sys.stderr)
    sys.exit(77)


def dump(model: Any) -> Any:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def messages(e: BaseException) -> list[str]:
    """The messages of an exception and, for a group, of every exception in it."""
    if isinstance(e, BaseExceptionGroup):
        return [m for inner in e.exceptions for m in messages(inner)]
    return [f"{type(e).__name__}: {e}"]


def call_report(result: Any) -> dict[str, Any]:
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    return {
        "isError": bool(result.is_error),
        "text": texts,
        "structured": result.structured_content,
        "meta": dump(result)["_meta"] if "_meta" in dump(result) else None,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="legacy", choices=["legacy", "auto"])
    parser.add_argument("--call", help="tool name to call")
    parser.add_argument("--args", default="{}", help="JSON arguments of --call")
    parser.add_argument("--bad-args", help="JSON arguments of --call that break its input schema")
    parser.add_argument("--fail-args", help="JSON arguments of --call on which the tool itself fails")
    parser.add_argument("--wait-change", action="store_true")
    parser.add_argument("--bearer", help="HTTP only: send `Authorization: Bearer BEARER`")
    parser.add_argument("transport", choices=["stdio", "http"])
    parser.add_argument("target")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    a = parser.parse_args()

    if a.transport == "stdio":
        server: Any = StdioServerParameters(command=a.target, args=a.rest, env=dict(os.environ))
    elif a.bearer is not None:
        headers = {"Authorization": f"Bearer {a.bearer}"}
        server = streamable_http_client(a.target, http_client=create_mcp_http_client(headers=headers))
    else:
        server = a.target

    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        inner = getattr(message, "root", message)
        if getattr(inner, "method", None) == "notifications/tools/list_changed":
            changed.set()

    try:
        await session(a, server, changed, on_message)
    except Exception as e:  # noqa: BLE001 - reported to the Rust test, which asserts on it
        print(json.dumps({"connect_error": messages(e)}), flush=True)
        sys.exit(3)


async def session(a: Any, server: Any, changed: Any, on_message: Any) -> None:
    report: dict[str, Any] = {"mode": a.mode}
    async with Client(server, mode=a.mode, read_timeout_seconds=30, message_handler=on_message) as client:
        report["protocol_version"] = client.protocol_version
        info = client.server_info
        report["server_name"] = info.name if info is not None else None
        caps = client.server_capabilities
        report["tools_capability"] = dump(caps.tools) if caps.tools is not None else None

        listed = await client.list_tools()
        report["tools"] = [dump(t) for t in listed.tools]

        if a.call:
            report["call"] = call_report(await client.call_tool(a.call, json.loads(a.args)))
            if a.bad_args is not None:
                report["bad_call"] = call_report(await client.call_tool(a.call, json.loads(a.bad_args)))
            if a.fail_args is not None:
                report["fail_call"] = call_report(await client.call_tool(a.call, json.loads(a.fail_args)))
        try:
            await client.call_tool("no_such_tool_here", {})
            report["unknown_call"] = {"error": None}
        except MCPError as e:
            report["unknown_call"] = {"error": e.error.message, "code": e.error.code}

        if a.wait_change:
            if client.protocol_version >= "2026-07-28":
                async with client.listen(tools_list_changed=True) as sub:
                    print("READY", flush=True)
                    with anyio.fail_after(60):
                        async for _event in sub:
                            break
            else:
                print("READY", flush=True)
                with anyio.fail_after(60):
                    await changed.wait()
            relisted = await client.list_tools(cache_mode="refresh")
            report["changed"] = [dump(t) for t in relisted.tools]

    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    anyio.run(main)
