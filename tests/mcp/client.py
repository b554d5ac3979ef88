"""Drives a real Toka MCP server with the MCP project's Python SDK (`mcp` 2.x)
and prints what it saw as one JSON object, for tests/all/mcp.rs to check.

    client.py SCENARIO --mode legacy|2026-07-28 (--stdio TOKA_HOST MANIFESTS | --url URL) [--token T]

Scenarios: basics (list, call, bad input, unknown tool, a limit), progress
(a workflow's progress notifications), cancel (cancel a spinning workflow;
reports the server's CPU use after), announce (a manifest added while
connected), refused (no token / a foreign Origin; --url only).
"""

import argparse
import asyncio
import json
import os
import sys
import time

import anyio
import httpx2
import mcp_types
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("scenario")
    p.add_argument("--mode", default="auto")
    p.add_argument("--stdio", nargs=2, metavar=("TOKA_HOST", "MANIFESTS"))
    p.add_argument("--url")
    p.add_argument("--token")
    p.add_argument("--cache-dir")
    return p.parse_args()


def server_of(args, message_handler=None):
    if args.stdio:
        binary, manifests = args.stdio
        env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "")}
        if args.cache_dir:
            env["TOKA_CACHE_DIR"] = args.cache_dir
        target = StdioServerParameters(
            command=binary,
            args=["mcp", "--manifests", manifests, "--reload-interval", "100ms"],
            env=env,
        )
    else:
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        target = streamable_http_client(args.url, http_client=httpx2.AsyncClient(headers=headers, timeout=30))
    return Client(
        target,
        mode=args.mode,
        cache=None,
        message_handler=message_handler,
        read_timeout_seconds=60,
    )


def text_of(result):
    return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def server_pid():
    """The toka-host the stdio client started: our child."""
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if int(fields[1]) == me and b"mcp" in cmd:
            return int(pid)
    return None


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def stopped_after_ms(pid, quiet=0.1, limit=5.0):
    """How long after now the process stops using CPU: the last tick it
    spent before `quiet` seconds without one (clock ticks are 10 ms)."""
    start = time.monotonic()
    last, changed = cpu_ticks(pid), start
    while time.monotonic() - changed < quiet and time.monotonic() - start < limit:
        time.sleep(0.002)
        now = cpu_ticks(pid)
        if now != last:
            last, changed = now, time.monotonic()
    return (changed - start) * 1000.0


def cpu_seconds(pid, window):
    def ticks():
        return cpu_ticks(pid)
    hz = os.sysconf("SC_CLK_TCK")
    before = ticks()
    time.sleep(window)
    return (ticks() - before) / hz


async def basics(args):
    out = {}
    async with server_of(args) as c:
        out["protocol"] = str(c.protocol_version)
        tools = await c.list_tools()
        out["tools"] = sorted(t.name for t in tools.tools)
        hello = next(t for t in tools.tools if t.name == "hello")
        out["hello_schema"] = hello.input_schema
        out["cache_scope"] = getattr(tools, "cache_scope", None)
        r = await c.call_tool("hello", {"name": "Ada"})
        out["ok"] = {"is_error": r.is_error, "structured": r.structured_content, "text": text_of(r)}
        r = await c.call_tool("hello", {"name": 42})
        out["bad_input"] = {"is_error": r.is_error, "text": text_of(r)}
        try:
            await c.call_tool("no-such-tool", {})
            out["unknown"] = {"error": None}
        except MCPError as e:
            out["unknown"] = {"code": e.error.code, "message": e.error.message}
        r = await c.call_tool("spinner", {"do": "spin"})
        out["limit"] = {"is_error": r.is_error, "text": text_of(r)}
        r = await c.call_tool("hello", {"name": "again"})
        out["still_serving"] = r.structured_content
    return out


async def progress(args):
    seen = []

    async def on_progress(p, total, message):
        seen.append({"progress": p, "total": total, "message": message})

    steps = [{"progress": 0.25}, {"sleep_ms": 50}, {"progress": 0.5}, {"sleep_ms": 50}, {"progress": 0.75}]
    async with server_of(args) as c:
        await c.list_tools()
        r = await c.call_tool("wf", {"steps": steps}, progress_callback=on_progress)
        return {"progress": seen, "is_error": r.is_error, "structured": r.structured_content}


async def cancel(args):
    out = {}
    async with server_of(args) as c:
        await c.list_tools()
        pid = server_pid() if args.stdio else None
        start = time.monotonic()
        async with anyio.create_task_group() as tg:
            async def spin():
                await c.call_tool("wf", {"steps": [{"progress": 0.1}, {"spin": True}]})

            tg.start_soon(spin)
            await anyio.sleep(0.7)
            if pid:
                # The positive control: it does spin before the cancel.
                out["cpu_during"] = await anyio.to_thread.run_sync(cpu_seconds, pid, 0.5)
            await anyio.sleep(max(0.0, 1.5 - (time.monotonic() - start)))
            tg.cancel_scope.cancel()
        out["cancelled"] = True
        out["waited_s"] = time.monotonic() - start
        if pid:
            # Cancel latency: from the cancel to the sandbox's last CPU tick.
            out["stopped_after_ms"] = await anyio.to_thread.run_sync(stopped_after_ms, pid)
            await asyncio.sleep(0.3)
            out["cpu_after_cancel"] = cpu_seconds(pid, 1.0)
        r = await c.call_tool("hello", {"name": "after"})
        out["still_serving"] = r.structured_content
    return out


async def announce(args, manifests_dir, manifest_text):
    out = {"events": []}
    legacy_events = []

    async def on_message(message):
        if isinstance(message, mcp_types.ToolListChangedNotification):
            legacy_events.append("tools/list_changed")

    async with server_of(args, message_handler=on_message) as c:
        before = sorted(t.name for t in (await c.list_tools()).tools)
        out["before"] = before
        path = os.path.join(manifests_dir, "announced.yaml")
        if args.mode == "legacy":
            with open(path, "w") as f:
                f.write(manifest_text)
            start = time.monotonic()
            while not legacy_events and time.monotonic() - start < 10:
                await asyncio.sleep(0.05)
            out["events"] = legacy_events[:1]
            out["after_s"] = time.monotonic() - start
        else:
            async with c.listen(tools_list_changed=True) as sub:
                with open(path, "w") as f:
                    f.write(manifest_text)
                start = time.monotonic()
                with anyio.move_on_after(10):
                    async for event in sub:
                        out["events"].append(type(event).__name__)
                        break
                out["after_s"] = time.monotonic() - start
        out["after"] = sorted(t.name for t in (await c.list_tools()).tools)
    return out


async def refused(args):
    out = {}
    async with httpx2.AsyncClient(timeout=10) as h:
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        r = await h.post(args.url, json=body, headers=headers)
        out["no_token"] = {"status": r.status_code, "www_authenticate": r.headers.get("www-authenticate")}
        r = await h.post(args.url, json=body, headers={**headers, "Origin": "https://evil.example",
                                                       "Authorization": f"Bearer {args.token}"})
        out["foreign_origin"] = {"status": r.status_code}
    # And the SDK's own view of a missing token.
    args_without = argparse.Namespace(**{**vars(args), "token": None})
    try:
        async with server_of(args_without) as c:
            await c.list_tools()
        out["sdk_without_token"] = "connected"
    except BaseException as e:  # the SDK raises an exception group on HTTP errors
        out["sdk_without_token"] = repr(e)[:500]
    return out


async def main():
    args = parse()
    if args.scenario == "basics":
        out = await basics(args)
    elif args.scenario == "progress":
        out = await progress(args)
    elif args.scenario == "cancel":
        out = await cancel(args)
    elif args.scenario == "announce":
        out = await announce(args, os.environ["ANNOUNCE_DIR"], os.environ["ANNOUNCE_MANIFEST"])
    elif args.scenario == "refused":
        out = await refused(args)
    else:
        sys.exit(f"unknown scenario {args.scenario}")
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    anyio.run(main)
