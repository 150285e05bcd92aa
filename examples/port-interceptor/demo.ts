/**
 * `npm run demo:intercept` (root): Pipy's whole port-interceptor demo, in one command. Two ordinary services
 * listen on their usual ports; the controller steers those ports through flowtap's tap proxies with BPF; a
 * curl and a Dubbo consumer — run inside the intercepted cgroup, knowing nothing about flowtap — get their
 * normal answers, and every exchange is recorded. Then the YAML is edited to drop one interceptor and the
 * same curl goes direct. Everything it creates (cgroup, programs, links) is removed before it exits.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DubboDecoder, encodeResponse, type ExchangeRecord } from 'flowtap';
import { cgroup2Mount } from 'flowtap/bpf';
import { stringify, parse } from 'yaml';
import { startController } from './controller.js';

if (process.getuid?.() !== 0) {
  console.error('npm run demo:intercept loads BPF programs and makes a cgroup: run it as root (sudo npm run demo:intercept).');
  process.exit(1);
}
const root = cgroup2Mount();
if (!root) {
  console.error('no cgroup v2 hierarchy is mounted here: mount one (mount -t cgroup2 none /sys/fs/cgroup/unified).');
  process.exit(1);
}

const OUT = resolve(process.cwd(), process.env.FLOWTAP_DEMO_OUT ?? 'intercepted.jsonl');
const cgroup = `${root}/flowtap-demo-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'flowtap-intercept-'));
const file = join(dir, 'interceptors.yaml');
const config = parse(readFileSync(new URL('./interceptors.yaml', import.meta.url), 'utf8'));
config.cgroup = cgroup;
config.outputs = [{ type: 'jsonl', path: OUT }];
writeFileSync(file, stringify(config));
const [httpPort, dubboPort] = config.interceptors.map((i: { port: number }) => i.port);

// The application: two services on their usual ports, unaware of flowtap.
const orders = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    if (req.url?.startsWith('/orders/missing')) { res.statusCode = 404; res.end('{"error":"no such order"}'); return; }
    res.end(JSON.stringify({ id: 42, items: 3, path: req.url }));
  });
});
const users = net.createServer((s) => {
  const d = new DubboDecoder({ onMessage: (m) => {
    if (m.type === 'request' && m.twoWay) s.write(encodeResponse({ requestId: m.requestId, value: { $class: 'demo.User', $: { id: 7, name: 'Ada' } } }));
  } });
  s.on('data', (c) => d.write(c));
  s.on('error', () => {});
});
const listen = async (s: net.Server, port: number) => {
  s.listen(port, '::');
  try { await once(s, 'listening'); } catch (e) {
    console.error(`port ${port} is taken (${(e as Error).message}): stop what uses it, or edit examples/port-interceptor/interceptors.yaml.`);
    process.exit(1);
  }
};
await listen(orders, httpPort);
await listen(users, dubboPort);

/** A command inside the intercepted cgroup, as the application's clients would be. */
const inCgroup = (cmd: string, args: string[]) => new Promise<string>((done) => {
  const p = spawn('sh', ['-c', `echo $$ > ${cgroup}/cgroup.procs && exec "$@"`, 'sh', cmd, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
  p.on('close', () => done(out.trim()));
});
const curl = (path: string) => inCgroup('curl', ['-s', '-w', ' (HTTP %{http_code})', `http://127.0.0.1:${httpPort}${path}`]);

// The demo (its services and the proxies) joins the cgroup too, so the hooks it loads stay inside that cgroup
// rather than on the machine's root one; its own connections are excluded from redirection by pid.
const home = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))![1];
mkdirSync(cgroup);
writeFileSync(`${cgroup}/cgroup.procs`, String(process.pid));
const records: ExchangeRecord[] = [];
rmSync(OUT, { force: true });
const controller = await startController(file, { onRecord: (r) => records.push(r), log: (l) => console.log(`  controller: ${l}`) });
let code = 0;
try {
  console.log(`\nclients in cgroup ${cgroup} talk to the usual ports:`);
  console.log(`  curl /orders/42          -> ${await curl('/orders/42')}`);
  console.log(`  curl /orders/missing     -> ${await curl('/orders/missing')}`);
  const dubbo = await inCgroup(process.execPath, ['--import', 'tsx', new URL('./dubbo-call.ts', import.meta.url).pathname, '127.0.0.1', String(dubboPort)]);
  console.log(`  dubbo getUser            -> ${dubbo}`);
  await new Promise((r) => setTimeout(r, 200));
  console.log('\nrecorded by flowtap (the clients never knew):');
  for (const r of records) console.log(`  ${r.protocol.padEnd(6)} ${r.endpoint.padEnd(30)} ${r.status.padEnd(12)} ${String(r.code).padStart(4)}  ${r.duration?.toFixed(1)} ms  server port ${r.server.port}`);

  console.log('\nediting the YAML: orders-http removed');
  writeFileSync(file, stringify({ ...config, interceptors: config.interceptors.slice(1) }));
  await new Promise((r) => setTimeout(r, 900)); // the watch polls every 300 ms
  const before = records.length;
  console.log(`  curl /orders/43          -> ${await curl('/orders/43')}`);
  await new Promise((r) => setTimeout(r, 200));
  console.log(`  new records: ${records.length - before} (the direct path is back)`);
  if (records.length !== 3 || records.length !== before) code = 1;
} finally {
  await controller.close();
  orders.close();
  users.close();
  writeFileSync(`${root}${home}/cgroup.procs`, String(process.pid));
  rmdirSync(cgroup);
  rmSync(dir, { recursive: true, force: true });
}
console.log(`\n${records.length} exchanges recorded to ${OUT}; interceptor closed, programs detached, cgroup removed.`);
process.exit(code);
