/**
 * A controller process for the BPF tests: optionally joins a cgroup, starts demo upstreams (HTTP, Dubbo) on
 * their original ports, a flowtap tap proxy per mapping and a PortInterceptor, then talks JSON lines:
 * stdout: {"ready":…}, {"record":…}, {"stats":…}, {"error":…}; stdin: {"remove":port}, {"add":{…}}, {"stats":1}, {"close":1}.
 * It is a separate process because interception is per process (cgroup membership, pid exclusion, netns).
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { DubboDecoder, encodeResponse, TapProxy } from '../../src/index.js';
import { PortInterceptor, type PortInterceptorOptions } from '../../src/bpf/index.js';

interface Config {
  mode: 'cgroup' | 'tc' | 'both';
  cgroupPath?: string;
  /** The cgroup this controller (the proxy) joins, when not `cgroupPath`. */
  proxyCgroup?: string;
  interfaces?: string[];
  /** [originalPort, proxyPort, upstream kind] */
  services: [number, number, 'http' | 'dubbo'][];
}

const config = JSON.parse(process.argv[2]) as Config;
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
// Join the cgroup first: sockets created from here on (listeners included) belong to it.
const home = config.proxyCgroup ?? config.cgroupPath;
if (home) writeFileSync(`${home}/cgroup.procs`, String(process.pid));

const listen = (s: net.Server, port: number) => new Promise<void>((r) => s.listen({ port, host: '::' }, () => r()));
for (const [original, , kind] of config.services) {
  if (kind === 'http') {
    await listen(http.createServer((req, res) => {
      req.resume();
      req.on('end', () => { res.setHeader('x-upstream', String(original)); res.end(`hello from ${original} ${req.url}`); });
    }), original);
  } else {
    await listen(net.createServer((s) => {
      const d = new DubboDecoder({ onMessage: (m) => {
        if (m.type === 'request' && m.twoWay) s.write(encodeResponse({ requestId: m.requestId, value: `pong ${m.request?.method}` }));
      } });
      s.on('data', (c) => d.write(c));
      s.on('error', () => {});
    }), original);
  }
}

const options: PortInterceptorOptions = { mode: config.mode, cgroupPath: config.cgroupPath, interfaces: config.interfaces };
let interceptor: PortInterceptor;
try {
  interceptor = PortInterceptor.open(options);
} catch (e) {
  say({ error: (e as Error).message });
  process.exit(3);
}
interceptor.on('warning', (w) => say({ warning: w }));
for (const [original, port] of config.services) {
  const proxy = new TapProxy({
    listen: { host: '::', port },
    // Where the client was going: SO_ORIGINAL_DST (cgroup mode) or the mapping (tc mode).
    // No fallback: if interception told us nothing, the connection fails and the test sees it.
    upstream: (socket) => {
      const d = interceptor.originalDestination(socket);
      if (!d) throw new Error(`no original destination for ${socket.remoteAddress}:${socket.remotePort}`);
      return { host: d.address, port: d.port };
    },
  });
  proxy.on('record', (r) => say({ record: r }));
  await proxy.listen();
  interceptor.add({ originalPort: original, port });
}
say({ ready: { pid: process.pid, attachments: interceptor.attachments, mappings: interceptor.list() } });

createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line) as { remove?: number; add?: { originalPort: number; port: number }; stats?: 1; close?: 1 };
  if (cmd.remove) interceptor.remove(cmd.remove);
  if (cmd.add) interceptor.add(cmd.add);
  if (cmd.stats) say({ stats: { ...interceptor.stats(), tracked: interceptor.trackedFlows() }, mappings: interceptor.list() });
  if (cmd.close) { interceptor.close(); say({ closed: true }); process.exit(0); }
  say({ ok: line });
});
