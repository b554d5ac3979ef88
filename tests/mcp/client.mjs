// Drives a real Toka MCP server with the MCP project's TypeScript client
// (@modelcontextprotocol/client 2.x) and prints what it saw as one JSON
// object, for tests/all/mcp.rs to check. Same scenarios as client.py:
//
//   node client.mjs SCENARIO --mode legacy|2026-07-28 (--stdio TOKA_HOST MANIFESTS | --url URL) [--token T]
//
// Run with NODE_PATH pointing at the installed client (scripts/install-test-deps.sh).

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(process.env.MCP_JS_DIR + '/');
const { Client, StreamableHTTPClientTransport } = await import(require.resolve('@modelcontextprotocol/client'));
const { StdioClientTransport } = await import(require.resolve('@modelcontextprotocol/client/stdio'));

function parse(argv) {
  const args = { scenario: argv[0], mode: 'auto' };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--mode') args.mode = argv[++i];
    else if (a === '--stdio') { args.stdio = [argv[++i], argv[++i]]; }
    else if (a === '--url') args.url = argv[++i];
    else if (a === '--token') args.token = argv[++i];
    else if (a === '--cache-dir') args.cacheDir = argv[++i];
  }
  return args;
}

function transportOf(args, token = args.token) {
  if (args.stdio) {
    const [command, manifests] = args.stdio;
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
    if (args.cacheDir) env.TOKA_CACHE_DIR = args.cacheDir;
    return new StdioClientTransport({
      command,
      args: ['mcp', '--manifests', manifests, '--reload-interval', '100ms'],
      env,
      stderr: 'ignore',
    });
  }
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  return new StreamableHTTPClientTransport(new URL(args.url), { requestInit: { headers } });
}

async function connect(args, token) {
  const mode = args.mode === 'legacy' ? 'legacy' : args.mode === 'auto' ? 'auto' : { pin: args.mode };
  const c = new Client({ name: 'toka-test', version: '1' }, { versionNegotiation: { mode } });
  const transport = transportOf(args, token);
  await c.connect(transport);
  c.tokaTransport = transport;
  return c;
}

// CPU seconds a process used during `ms` milliseconds (Linux /proc).
async function cpuSeconds(pid, ms) {
  const ticks = () => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop().trim().split(/\s+/);
    return Number(fields[11]) + Number(fields[12]);
  };
  const before = ticks();
  await new Promise((r) => setTimeout(r, ms));
  return (ticks() - before) / 100;
}

const textOf = (r) => (r.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('');

async function basics(args) {
  const c = await connect(args);
  const out = { protocol: c.getNegotiatedProtocolVersion() };
  const tools = await c.listTools(undefined, { cacheMode: 'refresh' });
  out.tools = tools.tools.map((t) => t.name).sort();
  out.hello_schema = tools.tools.find((t) => t.name === 'hello')?.inputSchema;
  out.cache_scope = tools.cacheScope ?? null;
  let r = await c.callTool({ name: 'hello', arguments: { name: 'Ada' } });
  out.ok = { is_error: r.isError ?? false, structured: r.structuredContent, text: textOf(r) };
  r = await c.callTool({ name: 'hello', arguments: { name: 42 } });
  out.bad_input = { is_error: r.isError ?? false, text: textOf(r) };
  try {
    await c.callTool({ name: 'no-such-tool', arguments: {} });
    out.unknown = { error: null };
  } catch (e) {
    out.unknown = { code: e.code, message: String(e.message) };
  }
  r = await c.callTool({ name: 'spinner', arguments: { do: 'spin' } });
  out.limit = { is_error: r.isError ?? false, text: textOf(r) };
  r = await c.callTool({ name: 'hello', arguments: { name: 'again' } });
  out.still_serving = r.structuredContent;
  await c.close();
  return out;
}

async function progress(args) {
  const c = await connect(args);
  await c.listTools();
  const seen = [];
  // The trailing sleep keeps the last notification out of the response's
  // read most of the time; see check_progress in tests/all/mcp.rs.
  const steps = [{ progress: 0.25 }, { sleep_ms: 50 }, { progress: 0.5 }, { sleep_ms: 50 }, { progress: 0.75 }, { sleep_ms: 100 }];
  const r = await c.callTool(
    { name: 'wf', arguments: { steps } },
    { onprogress: (p) => seen.push({ progress: p.progress, total: p.total ?? null, message: p.message ?? null }) },
  );
  await c.close();
  return { progress: seen, is_error: r.isError ?? false, structured: r.structuredContent };
}

async function cancel(args) {
  const c = await connect(args);
  await c.listTools();
  const abort = new AbortController();
  const start = Date.now();
  setTimeout(() => abort.abort(), 1500);
  const pid = c.tokaTransport.pid;
  const call = c.callTool({ name: 'wf', arguments: { steps: [{ progress: 0.1 }, { spin: true }] } }, { signal: abort.signal, timeout: 60000 });
  const out = {};
  if (args.stdio && pid) {
    // The positive control: it does spin before the cancel.
    await new Promise((r) => setTimeout(r, 700));
    out.cpu_during = await cpuSeconds(pid, 500);
  }
  let cancelled = false;
  try {
    await call;
  } catch (e) {
    cancelled = abort.signal.aborted;
  }
  out.cancelled = cancelled;
  out.waited_s = (Date.now() - start) / 1000;
  if (args.stdio && pid) {
    await new Promise((r) => setTimeout(r, 300));
    out.cpu_after_cancel = await cpuSeconds(pid, 1000);
  }
  const r = await c.callTool({ name: 'hello', arguments: { name: 'after' } });
  out.still_serving = r.structuredContent;
  await c.close();
  return out;
}

async function announce(args) {
  const c = await connect(args);
  const events = [];
  c.setNotificationHandler('notifications/tools/list_changed', () => { events.push('tools/list_changed'); });
  const before = (await c.listTools(undefined, { cacheMode: 'refresh' })).tools.map((t) => t.name).sort();
  let sub = null;
  if (args.mode !== 'legacy') sub = await c.listen({ toolsListChanged: true });
  writeFileSync(join(process.env.ANNOUNCE_DIR, 'announced.yaml'), process.env.ANNOUNCE_MANIFEST);
  const start = Date.now();
  while (events.length === 0 && Date.now() - start < 10000) await new Promise((r) => setTimeout(r, 50));
  const after_s = (Date.now() - start) / 1000;
  const after = (await c.listTools(undefined, { cacheMode: 'refresh' })).tools.map((t) => t.name).sort();
  if (sub) await sub.close();
  await c.close();
  return { events: events.slice(0, 1), before, after, after_s };
}

async function refused(args) {
  const out = {};
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
  const headers = { Accept: 'application/json, text/event-stream', 'Content-Type': 'application/json' };
  let r = await fetch(args.url, { method: 'POST', body, headers });
  out.no_token = { status: r.status, www_authenticate: r.headers.get('www-authenticate') };
  r = await fetch(args.url, { method: 'POST', body, headers: { ...headers, Authorization: `Bearer ${args.token}`, Origin: 'https://evil.example' } });
  out.foreign_origin = { status: r.status };
  try {
    const c = await connect(args, null);
    await c.listTools();
    out.sdk_without_token = 'connected';
    await c.close();
  } catch (e) {
    out.sdk_without_token = String(e).slice(0, 500);
  }
  return out;
}

const args = parse(process.argv.slice(2));
const run = { basics, progress, cancel, announce, refused }[args.scenario];
if (!run) { console.error(`unknown scenario ${args.scenario}`); process.exit(2); }
const out = await run(args);
console.log(JSON.stringify(out));
process.exit(0);
