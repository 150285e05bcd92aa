/** The built package as a user gets it: dist/ through require and import, the bin, and its errors. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, tempDir } from './tools.js';

const root = new URL('..', import.meta.url).pathname;
const CLI = join(root, 'dist/cli.js');
const httpv1 = join(root, '../shared/conformance/deepflow/httpv1.pcap');

describe('the built package', () => {
  it('require("flowtap") and import("flowtap") both work from dist/ and decode a request', () => {
    const snippet = (load: string) => `${load}
      const out = [];
      const d = m.http1Decoder({ type: 'request', onMessage: (x) => out.push(x.method + ' ' + x.target) });
      d.write(Buffer.from('GET /hello HTTP/1.1\\r\\n\\r\\n'));
      console.log(out.join(), typeof m.readCaptureFile, typeof m.Conversation);`;
    const cjs = run('node', ['-e', snippet("const m = require('flowtap');")], undefined);
    expect(cjs.stderr).toBe('');
    expect(cjs.stdout.trim()).toBe('GET /hello function function');
    const esm = run('node', ['--input-type=module', '-e', snippet("const m = await import('flowtap');")]);
    expect(esm.stderr).toBe('');
    expect(esm.stdout.trim()).toBe('GET /hello function function');
    // flowtap/bpf loads koffi and libbpf only when an interceptor is opened, not at import.
    const bpf = run('node', ['-e', `const b = require('flowtap/bpf');
      console.log(b.bpfAvailable, typeof b.PortInterceptor, Object.keys(require.cache).some((p) => /koffi/.test(p)))`]);
    expect(bpf.stderr).toBe('');
    expect(bpf.stdout.trim()).toBe('true function false');
  });

  it('importing the root entry loads no koffi, no BPF code and no sink (CJS cache and the ESM import graph)', () => {
    const r = run('node', ['-e', `require('flowtap');
      console.log(JSON.stringify(Object.keys(require.cache).filter((p) => /koffi|bpf|sink/i.test(p))))`]);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual([]);
    // Walk dist/index.js's imports (static and dynamic) through the chunks it pulls in.
    const seen = new Set<string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(join(root, 'dist', file), 'utf8');
      for (const m of text.matchAll(/(?:from\s*|import\s*\(\s*|import\s+)["']([^"']+)["']/g)) {
        if (m[1].startsWith('./')) walk(m[1].slice(2));
        else seen.add(m[1]);
      }
    };
    walk('index.js');
    expect([...seen].filter((x) => /koffi|bpf|sink/i.test(x))).toEqual([]);
    // No sink code in any file the root pulls in (sinks live in flowtap/sinks).
    const files = [...seen].filter((x) => x.endsWith('.js'));
    for (const f of files) expect(readFileSync(join(root, 'dist', f), 'utf8')).not.toMatch(/class (JsonlSink|BatchingSink)/);
    expect(files.length).toBeGreaterThan(0);
    const sinks = run('node', ['-e', "const s = require('flowtap/sinks'); console.log(typeof s.JsonlSink, typeof s.BatchingSink)"]);
    expect(sinks.stdout.trim()).toBe('function function');
    expect([...seen]).toContain('module'); // the walk does see imports (esbuild drops the node: prefix)
  });
});

describe('flowtap CLI', () => {
  it('--help explains each command; no command prints usage and exits 2', () => {
    const top = run('node', [CLI, '--help']);
    expect(top.status).toBe(0);
    expect(top.stdout).toMatch(/read FILE/);
    const read = run('node', [CLI, 'read', '--help']);
    expect(read.status).toBe(0);
    expect(read.stdout).toMatch(/--decode PORT=PROTO/);
    expect(run('node', [CLI]).status).toBe(2);
  });

  it('a wrong flag exits 2 with a one-line reason and the usage', () => {
    const r = run('node', [CLI, 'read', 'x.pcap', '--colour']);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe("flowtap: Unknown option '--colour'");
    expect(r.stderr).toMatch(/usage: flowtap read FILE/);
    const bad = run('node', [CLI, 'read', 'x.pcap', '--decode', '80=gopher']);
    expect(bad.status).toBe(2);
    expect(bad.stderr.split('\n')[0]).toBe('flowtap: --decode: unknown protocol "gopher" (known: http1, dubbo, http2)');
    expect(run('node', [CLI, 'frobnicate']).status).toBe(2);
  });

  it('a file that is no capture, a missing file and a directory each exit 2 with one clear line', () => {
    const dir = tempDir();
    const junk = join(dir, 'notes.txt');
    writeFileSync(junk, 'these are my notes, not packets\n');
    const r = run('node', [CLI, 'read', junk]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`flowtap: ${junk}: not a pcap or pcapng file (unknown magic number 74686573)\n`);
    const missing = run('node', [CLI, 'read', join(dir, 'nope.pcap')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe(`flowtap: cannot read ${join(dir, 'nope.pcap')}: no such file\n`);
    expect(run('node', [CLI, 'read', dir]).stderr).toMatch(/it is a directory/);
  });

  it.skipIf(!existsSync(httpv1))('reads the DeepFlow capture as JSON lines and as a table', () => {
    const j = run('node', [CLI, 'read', httpv1]);
    expect(j.status).toBe(0);
    const rec = JSON.parse(j.stdout);
    expect(rec).toMatchObject({ protocol: 'http1', endpoint: '/query', code: 200, status: 'ok' });
    const t = run('node', [CLI, 'read', httpv1, '--format', 'table']);
    expect(t.stdout.split('\n')[0]).toMatch(/^TIME\s+PROTO\s+CLIENT/);
    expect(t.stdout).toMatch(/POST \/query/);
  });

  it('a stream of garbage on a forced port yields parse_error records and the process goes on', async () => {
    const { frame, pcapFile, tcpPackets } = await import('./helpers.js');
    const junk = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 131 + 7) % 256));
    const ep = (cport: number) => ({ cip: '10.0.0.1', cport, sip: '10.0.0.2', sport: 9999 });
    // A real server answers garbage with 400 and closes; the next connection is healthy.
    const bad = tcpPackets([{ from: 'c', syn: true }, { from: 's', syn: true }, { from: 'c', data: junk },
      { from: 's', data: Buffer.from('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n') },
      { from: 's', fin: true }, { from: 'c', fin: true }], ep(5555));
    const good = tcpPackets([{ from: 'c', syn: true }, { from: 's', syn: true },
      { from: 'c', data: Buffer.from('GET /ok HTTP/1.1\r\n\r\n') }, { from: 's', data: Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n') }], ep(5556));
    good.forEach((p, i) => { p.time = bad[bad.length - 1].time + 1 + i; });
    const pk = [...bad, ...good];
    const f = join(tempDir(), 'junk.pcap');
    writeFileSync(f, pcapFile(1, pk.map((p) => ({ data: frame(1, p.ip), time: p.time }))));
    const r = run('node', [CLI, 'read', f, '--decode', '9999=http1']);
    expect(r.status).toBe(0);
    const recs = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(recs.map((x) => [x.status, x.code])).toEqual([['parse_error', 400], ['ok', 200]]);
    expect(recs[0].error).toMatch(/^request HPE_/);
    expect(recs[1].endpoint).toBe('/ok');
    // Without --decode the server's HTTP/1 answer is enough to recognise the connection: same records.
    expect(run('node', [CLI, 'read', f]).stdout).toBe(r.stdout);
  });
});

describe('docs and examples', () => {
  it('docs/api.md names every runtime export of every entry point, and nothing that is not one', async () => {
    const api = readFileSync(join(root, 'docs/api.md'), 'utf8');
    const documented = new Set([...api.matchAll(/`([A-Za-z_][A-Za-z0-9_]*)(?:\([^`]*\))?`/g)].map((m) => m[1]));
    for (const entry of ['index', 'codecs/index', 'sinks/index', 'bpf/index', 'replay/index', 'diff/index', 'gateway/index']) {
      const exported = Object.keys(await import(join(root, 'dist', `${entry}.js`)));
      expect(exported.filter((name) => !documented.has(name)), `${entry} exports missing from docs/api.md`).toEqual([]);
    }
  });

  it("the README's architecture table names each folder of src/, and only those", async () => {
    const { readdirSync } = await import('node:fs');
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const table = readme.split('## Architecture')[1]?.split('\n## ')[0] ?? '';
    const named = [...table.matchAll(/^\| `src\/([a-z]+)\/` \|/gm)].map((m) => m[1]).sort();
    const folders = readdirSync(join(root, 'src'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    expect(named).toEqual(folders);
  });

  const shared = join(root, '../shared/docs/record.md');
  it.skipIf(!existsSync(shared))('docs/record.md is the shared contract, unchanged', () => {
    expect(readFileSync(join(root, 'docs/record.md'), 'utf8')).toBe(readFileSync(shared, 'utf8'));
  });

  it.skipIf(!existsSync(httpv1))('examples/endpoint-summary prints a per-endpoint table for a capture', () => {
    const r = run('node', ['--import', 'tsx', join(root, 'examples/endpoint-summary/main.ts'), httpv1]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ENDPOINT\s+CALLS\s+ERRORS\s+P50 ms\s+P99 ms\n/);
    expect(r.stdout).toMatch(/http1 POST \/query\s+1\s+0\s+84\.1\s+84\.1/);
    const bad = run('node', ['--import', 'tsx', join(root, 'examples/endpoint-summary/main.ts'), '/etc/hostname']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/not a pcap or pcapng file/);
  });
});
