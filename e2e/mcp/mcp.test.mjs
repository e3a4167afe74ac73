// End-to-end test of `docex mcp` with the official TypeScript MCP SDK: a
// client no one here wrote spawns the real binary over stdio (and over
// streamable HTTP) and uses the tools and resources as an agent host would.
// Run by run.sh: DOCEX_BIN is the binary, DOCEX_E2E_DIR a fresh directory.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const bin = process.env.DOCEX_BIN;
const dir = process.env.DOCEX_E2E_DIR;
assert.ok(bin && dir, 'DOCEX_BIN and DOCEX_E2E_DIR must be set (run e2e/mcp/run.sh)');
const config = join(dir, 'docex.yaml');
const files = join(dir, 'files');
// Only DOCEX_* of our own: nothing of the caller's environment leaks in.
const env = { PATH: process.env.PATH, HOME: process.env.HOME ?? dir };

function docex(...args) {
  const r = spawnSync(bin, ['--config', config, ...args], { cwd: dir, env, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function docexOK(...args) {
  const r = docex(...args);
  assert.equal(r.code, 0, `docex ${args.join(' ')}: ${r.stderr}`);
  return r;
}

async function connect(...identity) {
  const transport = new StdioClientTransport({
    command: bin,
    args: ['--config', config, 'mcp', '--allow-path', files, ...identity],
    cwd: dir,
    env,
    stderr: 'pipe',
  });
  const client = new Client({ name: 'docex-e2e', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

// call calls a tool that must succeed and returns its structured output.
async function call(client, name, args = {}) {
  const res = await client.callTool({ name, arguments: args });
  assert.ok(!res.isError, `${name}: ${JSON.stringify(res.content)}`);
  assert.ok(res.structuredContent, `${name}: no structured content`);
  return res.structuredContent;
}

async function callError(client, name, args) {
  const res = await client.callTool({ name, arguments: args });
  assert.equal(res.isError, true, `${name} succeeded: ${JSON.stringify(res)}`);
  return res.content.map((c) => c.text).join('\n');
}

before(() => {
  mkdirSync(files, { recursive: true });
  docexOK('init');
  docexOK('tenant', 'create', 'acme');
  docexOK('tenant', 'create', 'other');
  writeFileSync(join(files, 'report.md'), '# Q3 report\n\nRevenue grew.\n');
});

test('an agent adds, finds and reads back documents over stdio', async () => {
  const client = await connect('--tenant', 'acme', '--user', 'agent-1', '--roles', 'writer');
  try {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    for (const want of ['add_document', 'create_basket', 'find_documents', 'get_document', 'list_baskets', 'read_document', 'run_plugin', 'set_metadata']) {
      assert.ok(names.includes(want), `tool ${want} missing from ${names}`);
    }
    for (const t of tools) {
      assert.ok(t.description && t.inputSchema && t.outputSchema, `tool ${t.name} lacks a description or schemas`);
    }

    await call(client, 'create_basket', { name: 'inbox' });
    const text = 'Memo: the launch moves to Tuesday. '.repeat(1000); // several pages
    const added = await call(client, 'add_document', {
      basket: 'inbox', name: 'memo.txt', text, metadata: { kind: 'memo', priority: 2, urgent: true },
    });
    assert.equal(added.duplicate, false);
    const id = added.document.id;
    const fromPath = await call(client, 'add_document', { basket: 'inbox', path: 'report.md', metadata: { kind: 'report' } });
    assert.equal(fromPath.document.name, 'report.md');
    assert.match(await callError(client, 'add_document', { basket: 'inbox', path: '../docex.yaml' }), /^denied:/);

    const found = await call(client, 'find_documents', { basket: 'inbox', metadata: { kind: 'memo', priority: 2 } });
    assert.equal(found.total, 1);
    assert.equal(found.documents[0].id, id);
    assert.equal(found.documents[0].metadata.urgent, true);

    let offset = 0;
    let back = '';
    let pages = 0;
    for (;;) {
      const page = await call(client, 'read_document', { id, offset, max_bytes: 8192 });
      back += page.text;
      pages++;
      if (page.eof) break;
      offset = page.next_offset;
    }
    assert.equal(back, text);
    assert.ok(pages > 1, `read ${pages} page(s)`);

    const record = await call(client, 'get_document', { id });
    assert.equal(record.size, Buffer.byteLength(text));
    const updated = await call(client, 'set_metadata', { id, metadata: { reviewed: true } });
    assert.equal(updated.metadata.reviewed, true);

    // Errors are tool results the model can act on, and the server keeps serving.
    assert.match(await callError(client, 'get_document', { id: '0190c1a2-0000-7000-8000-000000000000' }), /^not_found:/);
    assert.match(await callError(client, 'read_document', { id, offset: 10 ** 9 }), /^invalid:/);
    await call(client, 'list_baskets');

    // Documents are resources too.
    const { resources } = await client.listResources();
    assert.ok(resources.some((r) => r.uri === 'docex://baskets'));
    const res = await client.readResource({ uri: `docex://documents/${fromPath.document.id}` });
    assert.equal(res.contents[0].text, '# Q3 report\n\nRevenue grew.\n');
  } finally {
    await client.close();
  }
});

test('identity is fixed: a reader cannot write, another tenant sees nothing', async () => {
  const writer = await connect('--tenant', 'acme', '--user', 'agent-1', '--roles', 'writer');
  const doc = await call(writer, 'add_document', { basket: 'inbox', name: 'private.txt', text: 'acme only' });
  await writer.close();

  const reader = await connect('--tenant', 'acme', '--user', 'agent-2', '--roles', 'reader');
  try {
    assert.match(await callError(reader, 'add_document', { basket: 'inbox', name: 'x.txt', text: 'x' }), /^forbidden:/);
    assert.equal((await call(reader, 'read_document', { id: doc.document.id })).text, 'acme only');
  } finally {
    await reader.close();
  }

  const other = await connect('--tenant', 'other', '--user', 'agent-3', '--roles', 'admin');
  try {
    assert.match(await callError(other, 'get_document', { id: doc.document.id }), /^not_found:/);
    assert.match(await callError(other, 'read_document', { id: doc.document.id }), /^not_found:/);
    // Arguments cannot name another identity.
    assert.match(await callError(other, 'get_document', { id: doc.document.id, tenant_id: 'acme' }), /validat/);
    assert.deepEqual((await call(other, 'list_baskets')).baskets, []);
  } finally {
    await other.close();
  }

  const log = JSON.parse(docexOK('--tenant', 'acme', '--user', 'ops', '--roles', 'admin', 'audit', 'list', '--json').stdout);
  assert.ok(log.some((e) => e.operation === 'mcp.document.add' && e.user_id === 'agent-1'));
  assert.ok(log.some((e) => e.operation === 'mcp.document.add' && e.user_id === 'agent-2' && e.outcome === 'denied'));
  assert.ok(log.some((e) => e.operation === 'mcp.document.read' && e.user_id === 'agent-2' && e.outcome === 'ok'));
});

test('a server without a user or for a denied tenant exits before serving', () => {
  const cases = [
    [['--tenant', 'acme', '--roles', 'reader'], 4, /user/],
    [['--tenant', 'nope', '--user', 'a', '--roles', 'reader'], 4, /unknown tenant "nope"/],
    [['--tenant', 'system', '--user', 'a', '--roles', 'admin'], 4, /bootstrap/],
    [['--tenant', 'acme', '--user', 'a', '--roles', 'reader', '--http', '0.0.0.0:0'], 2, /non-loopback/],
  ];
  for (const [args, code, msg] of cases) {
    const r = docex('mcp', ...args);
    assert.equal(r.code, code, `docex mcp ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.equal(r.stdout, '');
  }
});

test('streamable HTTP on a loopback address', async () => {
  const child = spawn(bin, ['--config', config, 'mcp', '--http', '127.0.0.1:0', '--tenant', 'acme', '--user', 'agent-h', '--roles', 'reader'],
    { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const url = await new Promise((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (d) => {
        err += d;
        const m = err.match(/http:\/\/127\.0\.0\.1:\d+\/mcp/);
        if (m) resolve(m[0]);
      });
      child.on('exit', (code) => reject(new Error(`docex mcp --http exited ${code}: ${err}`)));
    });
    const client = new Client({ name: 'docex-e2e-http', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
    const out = await call(client, 'list_baskets');
    assert.ok(out.baskets.some((b) => b.name === 'inbox'));
    await client.close();
  } finally {
    child.kill('SIGTERM');
  }
});
