/**
 * The BPF port interceptor against the real kernel: cgroup hooks for local clients, tcx programs for remote
 * clients in network namespaces, both ending in a flowtap tap proxy; iptables REDIRECT and TPROXY for the
 * users who prefer them; and cleanup (close, SIGKILL) checked with bpftool. Every cgroup and namespace is
 * made here and removed here.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfObject, PortInterceptor, getOriginalDestination, portCodec, rawCodec, setLibbpfLog } from '../src/bpf/index.js';
import { objectPath } from '../src/bpf/system.js';
import { Controller, bpfSkipReason, flowtapBpfObjects, makeCgroup, makeNetnsPair, runIn, type Cgroup, type NetnsPair } from './bpf/sandbox.js';
import { have, tempDir } from './tools.js';

const skip = bpfSkipReason();
if (skip) console.warn(`BPF interceptor tests skipped: ${skip}`);

const curlArgs = (url: string) => ['-s', '-m', '5', '-w', '\n%{http_code}', url];
const probe = new URL('./bpf/redirect-probe.ts', import.meta.url).pathname;
const dubboClient = new URL('./bpf/dubbo-client.ts', import.meta.url).pathname;
const optionsClient = new URL('./bpf/ip-options-client.ts', import.meta.url).pathname;

/** Ports outside the ephemeral range (no warning), distinct per describe. */
const HTTP_PORT = 18180;
const HTTP_PROXY = 18181;
const DUBBO_PORT = 18190;
const DUBBO_PROXY = 18191;

describe.skipIf(skip !== null)('cgroup mode: local clients in a cgroup', () => {
  let cg: Cgroup;
  let ctl: Controller;

  beforeAll(async () => {
    cg = makeCgroup();
    ctl = new Controller({ mode: 'cgroup', cgroupPath: cg.path, services: [[HTTP_PORT, HTTP_PROXY, 'http'], [DUBBO_PORT, DUBBO_PROXY, 'dubbo']] });
    await ctl.ready();
  }, 30_000);

  afterAll(async () => {
    await ctl?.kill();
    cg?.remove();
  });

  it('curl to the original port, IPv4 and IPv6, gets the upstream\'s answer through the tap proxy, which records it', async () => {
    const v4 = await cg.run('curl', curlArgs(`http://127.0.0.1:${HTTP_PORT}/v4?x=1`));
    expect(v4.stdout).toBe(`hello from ${HTTP_PORT} /v4?x=1\n200`);
    const v6 = await cg.run('curl', curlArgs(`http://[::1]:${HTTP_PORT}/v6`));
    expect(v6.stdout).toBe(`hello from ${HTTP_PORT} /v6\n200`);
    await ctl.wait((l) => 'record' in l && (l.record as { endpoint: string }).endpoint === '/v6');
    const recs = ctl.records().filter((r) => r.protocol === 'http1');
    expect(recs.map((r) => [r.endpoint, r.code, r.server.port])).toEqual([['/v4', 200, HTTP_PORT], ['/v6', 200, HTTP_PORT]]);
    // The proxy learnt each original destination from SO_ORIGINAL_DST (it has no fallback), and its own
    // upstream connections to the original port were left alone (excluded by pid) rather than looped.
    expect(recs.map((r) => r.server.ip)).toEqual(['127.0.0.1', '::1']);
    const s = await ctl.stats();
    expect(s).toMatchObject({ redirected: 2, originalDstAnswers: 2, excluded: 2 });
  });

  it('a Dubbo consumer in the cgroup gets its answer and a dubbo record appears', async () => {
    const r = await cg.run(process.execPath, ['--import', 'tsx', dubboClient, '127.0.0.1', String(DUBBO_PORT), 'ping']);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ status: 20, value: 'pong ping' });
    const rec = await ctl.wait((l) => 'record' in l && (l.record as { protocol: string }).protocol === 'dubbo');
    expect(rec.record).toMatchObject({ protocol: 'dubbo', endpoint: 'demo.Echo/ping', status: 'ok', server: { port: DUBBO_PORT } });
  });

  it('a process outside the cgroup is not intercepted', async () => {
    const before = ctl.records().length;
    const out = await runIn(['curl', ...curlArgs(`http://127.0.0.1:${HTTP_PORT}/outside`)]);
    expect(out.stdout).toBe(`hello from ${HTTP_PORT} /outside\n200`);
    await new Promise((r) => setTimeout(r, 200));
    expect(ctl.records().length).toBe(before);
  });

  it('getOriginalDestination is null for a connection nobody redirected', async () => {
    const server = net.createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection');
    const c = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    const [sock] = (await accepted) as [net.Socket];
    expect(getOriginalDestination(sock)).toBeNull();
    c.destroy();
    sock.destroy();
    server.close();
  });

  it('removing the mapping restores the direct path: same answer, no longer through the proxy', async () => {
    ctl.send({ remove: HTTP_PORT });
    await ctl.wait((l) => l.ok === JSON.stringify({ remove: HTTP_PORT }));
    const before = ctl.records().length;
    const out = await cg.run('curl', curlArgs(`http://127.0.0.1:${HTTP_PORT}/direct`));
    expect(out.stdout).toBe(`hello from ${HTTP_PORT} /direct\n200`);
    await new Promise((r) => setTimeout(r, 200));
    expect(ctl.records().length).toBe(before);
    expect((await ctl.stats()).redirected).toBe(3); // the two curls and the Dubbo consumer, nothing since
  });
});

describe.skipIf(skip !== null)('cgroup mode with the proxy in another cgroup than its clients', () => {
  it('SO_ORIGINAL_DST is answered where the proxy runs, interception happens where the clients run', async () => {
    const clients = makeCgroup();
    const proxies = makeCgroup();
    const ctl = new Controller({ mode: 'cgroup', cgroupPath: clients.path, proxyCgroup: proxies.path, services: [[18780, 18781, 'http']] });
    try {
      const ready = await ctl.ready();
      expect((ready.ready as { attachments: string[] }).attachments).toEqual([
        `flowtap_connect4 on cgroup ${clients.path}`, `flowtap_connect6 on cgroup ${clients.path}`,
        `flowtap_sockops on cgroup ${clients.path}`, `flowtap_getsockopt on cgroup ${proxies.path}`,
      ]);
      const out = await clients.run('curl', curlArgs('http://127.0.0.1:18780/split'));
      expect(out.stdout).toBe('hello from 18780 /split\n200');
      const rec = await ctl.wait((l) => 'record' in l);
      expect(rec.record).toMatchObject({ endpoint: '/split', server: { ip: '127.0.0.1', port: 18780 } });
    } finally {
      await ctl.kill();
      clients.remove();
      proxies.remove();
    }
  }, 30_000);
});

describe.skipIf(skip !== null)('tc mode: remote clients through tcx on a veth, in network namespaces', () => {
  let ns: NetnsPair;
  let ctl: Controller;

  beforeAll(async () => {
    ns = makeNetnsPair();
    // Checksum offload off on both ends: every checksum is computed and verified in software, so a port
    // rewrite without a correct checksum fix would drop the packets.
    if (have('ethtool')) {
      for (const [n, i] of [[ns.client, ns.clientIf], [ns.server, ns.serverIf]]) {
        await runIn([...ns.inNs(n), 'ethtool', '-K', i, 'tx', 'off', 'rx', 'off']);
      }
    }
    ctl = new Controller({ mode: 'tc', interfaces: [ns.serverIf], services: [[8080, 15001, 'http']] }, ns.inNs(ns.server));
    await ctl.ready();
  }, 30_000);

  afterAll(async () => {
    await ctl?.kill();
    ns?.remove();
  });

  it('a client in another namespace reaches the original port over IPv4 and IPv6 and is recorded by the proxy', async () => {
    const v4 = await runIn([...ns.inNs(ns.client), 'curl', ...curlArgs(`http://${ns.serverIp}:8080/remote4`)]);
    expect(v4.stdout).toBe('hello from 8080 /remote4\n200');
    const v6 = await runIn([...ns.inNs(ns.client), 'curl', ...curlArgs(`http://[${ns.serverIp6}]:8080/remote6`)]);
    expect(v6.stdout).toBe('hello from 8080 /remote6\n200');
    await ctl.wait((l) => 'record' in l && (l.record as { endpoint: string }).endpoint === '/remote6');
    const recs = ctl.records();
    expect(recs.map((r) => [r.endpoint, r.client.ip, r.server.port])).toEqual([
      ['/remote4', ns.clientIp, 8080], ['/remote6', ns.clientIp6, 8080],
    ]);
    const s = await ctl.stats();
    expect(s.flows).toBe(2);
    expect(s.packetsIn).toBeGreaterThan(4);
    expect(s.packetsOut).toBeGreaterThan(4);
  });

  it('IPv4 packets with IP options are rewritten too (the TCP header is found from IHL)', async () => {
    const cap = spawn(ns.inNs(ns.server)[0], [...ns.inNs(ns.server).slice(1), 'tcpdump', '-i', ns.serverIf, '-n', '-v', '-l', '--immediate-mode', 'tcp and dst port 8080'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let dump = '';
    cap.stdout.setEncoding('utf8').on('data', (d) => { dump += d; });
    await new Promise<void>((resolve) => cap.stderr.on('data', (d) => { if (String(d).includes('listening')) resolve(); }));
    const r = await runIn([...ns.inNs(ns.client), process.execPath, '--import', 'tsx', optionsClient, ns.serverIp, '8080', '/with-options']);
    await new Promise((res) => setTimeout(res, 300));
    cap.kill('SIGINT');
    await once(cap, 'close');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hello from 8080 /with-options');
    expect(dump).toMatch(/options \(NOP,NOP,NOP,EOL\)/); // the options were really on the wire
    await ctl.wait((l) => 'record' in l && (l.record as { endpoint: string }).endpoint === '/with-options');
  });

  it('a reset forgets its flow; connections closed normally stay tracked until they age out', async () => {
    const tracked = (await ctl.stats()).tracked;
    expect(tracked).toBe((await ctl.stats()).flows); // every curl so far closed with FIN: still tracked
    // A client that connects, sends half a request and resets (SO_LINGER 0): the RST goes through ingress.
    const script = `const s = require('node:net').connect(8080, '${ns.serverIp}', () => { s.write('GET /x HTTP/1.1\\r\\n'); setTimeout(() => s.resetAndDestroy(), 100); });`;
    const r = await runIn([...ns.inNs(ns.client), process.execPath, '-e', script]);
    expect(r.stderr).toBe('');
    await new Promise((res) => setTimeout(res, 200));
    const s = await ctl.stats();
    expect(s.flows).toBe(tracked + 1); // it was redirected...
    expect(s.tracked).toBe(tracked); // ...and forgotten at its reset
  });

  it('removing the mapping sends new connections straight to the original port', async () => {
    ctl.send({ remove: 8080 });
    await ctl.wait((l) => l.ok === JSON.stringify({ remove: 8080 }));
    const before = ctl.records().length;
    const flowsBefore = (await ctl.stats()).flows;
    const out = await runIn([...ns.inNs(ns.client), 'curl', ...curlArgs(`http://${ns.serverIp}:8080/direct`)]);
    expect(out.stdout).toBe('hello from 8080 /direct\n200');
    await new Promise((r) => setTimeout(r, 200));
    expect(ctl.records().length).toBe(before);
    expect((await ctl.stats()).flows).toBe(flowsBefore);
  });
});

describe.skipIf(skip !== null || !have('iptables'))('iptables users: REDIRECT and TPROXY (inside a namespace)', () => {
  let ns: NetnsPair;
  beforeAll(() => { ns = makeNetnsPair(); });
  afterAll(() => ns?.remove());

  it('getOriginalDestination answers after an iptables REDIRECT', async () => {
    const ipt = await runIn([...ns.inNs(ns.client), 'iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '127.0.0.1', '--dport', '18280', '-j', 'REDIRECT', '--to-ports', '18281']);
    expect(ipt.stderr).toBe('');
    const r = await runIn([...ns.inNs(ns.client), process.execPath, '--import', 'tsx', probe, 'redirect', '18280', '18281']);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ original: { address: '127.0.0.1', port: 18280, family: 'IPv4' } });
  });

  it('listenTransparent accepts what an iptables TPROXY rule sends it, with the original address and port', async () => {
    const s = ns.server;
    for (const cmd of [
      ['iptables', '-t', 'mangle', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '18380', '-j', 'TPROXY', '--on-port', '18381', '--tproxy-mark', '0x1/0x1'],
      ['ip', 'rule', 'add', 'fwmark', '1', 'lookup', '100'],
      ['ip', 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100'],
    ]) {
      const r = await runIn([...ns.inNs(s), ...cmd]);
      expect(r.stderr, cmd.join(' ')).toBe('');
    }
    const argv = [...ns.inNs(s), process.execPath, '--import', 'tsx', probe, 'tproxy', '18381'];
    const listener = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    listener.stdout.setEncoding('utf8');
    let stdout = '';
    await new Promise<void>((resolve) => listener.stdout.on('data', (d) => { stdout += d; if (stdout.includes('\n')) resolve(); }));
    const curl = await runIn([...ns.inNs(ns.client), 'curl', '-s', '-m', '5', `telnet://${ns.serverIp}:18380`]);
    expect(curl.stdout).toBe('tproxy says hi\n');
    await once(listener, 'close');
    const out = stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(out).toEqual([{ transparent: true }, { accepted: { localAddress: ns.serverIp, localPort: 18380 } }]);
  });
});

describe.skipIf(skip !== null)('lifecycle and errors', () => {
  it('close() and SIGKILL of the controller both leave no flowtap program or link in the kernel', async () => {
    expect(flowtapBpfObjects()).toEqual({ progs: [], links: 0 });
    const cg = makeCgroup();
    const started: Controller[] = [];
    try {
      const a = new Controller({ mode: 'cgroup', cgroupPath: cg.path, services: [[18480, 18481, 'http']] });
      started.push(a);
      await a.ready();
      expect(flowtapBpfObjects().progs.sort()).toEqual(['flowtap_connect4', 'flowtap_connect6', 'flowtap_getsockopt', 'flowtap_sockops']);
      expect(flowtapBpfObjects().links).toBe(4);
      a.send({ close: 1 });
      await a.wait((l) => 'closed' in l);
      await waitForNone();

      const b = new Controller({ mode: 'cgroup', cgroupPath: cg.path, services: [[18480, 18481, 'http']] });
      started.push(b);
      await b.ready();
      expect(flowtapBpfObjects().links).toBe(4);
      await b.kill('SIGKILL');
      await waitForNone();
    } finally {
      for (const c of started) await c.kill();
      cg.remove();
    }
  }, 60_000);

  it('SIGTERM detaches everything before the process goes', async () => {
    const ns = makeNetnsPair();
    let c: Controller | null = null;
    try {
      c = new Controller({ mode: 'tc', interfaces: [ns.serverIf], services: [[8080, 15001, 'http']] }, ns.inNs(ns.server));
      await c.ready();
      expect(flowtapBpfObjects().links).toBe(2);
      await c.kill('SIGTERM');
      expect(c.proc.signalCode).toBe('SIGTERM'); // the signal still did what it does
      await waitForNone();
    } finally {
      await c?.kill();
      ns.remove();
    }
  }, 60_000);

  it('says what to do: no interfaces for tc, an unknown interface, a port mapped twice, an ephemeral proxy port', () => {
    expect(() => PortInterceptor.open({ mode: 'tc' })).toThrow('the tc mode needs interfaces: pass the names of the interfaces remote clients arrive on.');
    expect(() => PortInterceptor.open({ mode: 'tc', interfaces: ['nope0'] })).toThrow(/^there is no interface nope0 here \(known: .*lo.*\): pass one of those in interfaces\.$/);
    const cg = makeCgroup();
    try {
      const i = PortInterceptor.open({ cgroupPath: cg.path, proxyCgroupPath: cg.path, handleSignals: false });
      const warnings: string[] = [];
      i.on('warning', (w) => warnings.push(w));
      i.add({ originalPort: 18580, port: 18581 });
      expect(() => i.add({ originalPort: 18580, port: 18582 })).toThrow('port 18580 is already mapped to 18581: remove that mapping first.');
      expect(() => i.add({ originalPort: 0, port: 1 })).toThrow('originalPort must be a port number from 1 to 65535, not 0.');
      i.add({ originalPort: 18590, port: 40000 });
      expect(warnings).toEqual([expect.stringMatching(/^proxy port 40000 lies in the ephemeral port range \d+-\d+: a client socket may take it first; pick a port outside it\.$/)]);
      expect(i.list()).toEqual([{ originalPort: 18580, port: 18581 }, { originalPort: 18590, port: 40000 }]);
      expect(i.remove(18580)).toBe(true);
      expect(i.remove(18580)).toBe(false);
      i.close();
      i.close();
      expect(() => i.add({ originalPort: 1, port: 2 })).toThrow('this PortInterceptor is closed');
    } finally {
      cg.remove();
    }
    expect(flowtapBpfObjects()).toEqual({ progs: [], links: 0 });
  });

  it('typed events, libbpf\'s log routed to the caller, and the kernel\'s maps agree with list()', () => {
    const cg = makeCgroup();
    const log: string[] = [];
    const events: string[] = [];
    try {
      const i = PortInterceptor.open({ cgroupPath: cg.path, proxyCgroupPath: cg.path, handleSignals: false, log: (level, m) => log.push(`${level} ${m}`) });
      i.on('add', (m) => events.push(`add ${m.originalPort}->${m.port}`));
      i.on('remove', (m) => events.push(`remove ${m.originalPort}->${m.port}`));
      i.on('close', () => events.push('close'));
      i.add({ originalPort: 18680, port: 18681 });
      i.add({ originalPort: 18690, port: 18691 });
      expect(i.kernelMappings()).toEqual({ cgroup: i.list(), tc: [] });
      i.remove(18680);
      expect(i.kernelMappings().cgroup).toEqual([{ originalPort: 18690, port: 18691 }]);
      i.close();
      expect(events).toEqual(['add 18680->18681', 'add 18690->18691', 'remove 18680->18681', 'close']);
      expect(log.some((l) => /^debug libbpf: .*connect\.bpf\.o/.test(l))).toBe(true);
      // A typed view must match the map's layout: the kernel writes whole keys into its buffers.
      const obj = BpfObject.load(objectPath('tc.bpf.o'));
      try {
        expect(() => obj.map('flows', rawCodec(20, 4))).toThrow('BPF map flows has 36-byte keys and 4-byte values, not 20 and 4');
        expect(obj.map('tc_port_map', portCodec).get(1)).toBeUndefined();
      } finally {
        obj.close();
      }
    } finally {
      setLibbpfLog(null);
      cg.remove();
    }
  });

  it.skipIf(!have('setpriv'))('without root or CAP_BPF, opening says so in one sentence', async () => {
    const r = await runIn(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, '--import', 'tsx', '-e',
      `import('${new URL('../src/bpf/index.ts', import.meta.url).pathname}').then((m) => { try { m.PortInterceptor.open(); } catch (e) { console.log(e.message); } })`]);
    expect(r.stdout.trim()).toBe('the port interceptor needs root, or the CAP_BPF and CAP_NET_ADMIN capabilities: run it with sudo, or grant them (setcap cap_bpf,cap_net_admin+ep "$(command -v node)").');
  });
});

async function waitForNone(): Promise<void> {
  // Program memory is released after an RCU grace period: poll briefly.
  for (let i = 0; i < 60; i++) {
    const o = flowtapBpfObjects();
    if (o.progs.length === 0 && o.links === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(flowtapBpfObjects()).toEqual({ progs: [], links: 0 });
}

describe.skipIf(skip !== null)('examples/port-interceptor', () => {
  it('npm run demo:intercept: curl and a Dubbo consumer in the cgroup get their answers, records appear, the YAML edit restores the direct path, nothing is left behind', async () => {
    const out = join(tempDir(), 'intercepted.jsonl');
    const root = new URL('..', import.meta.url).pathname;
    const p = spawn(process.execPath, ['--import', 'tsx', join(root, 'examples/port-interceptor/demo.ts')], { cwd: root, env: { ...process.env, FLOWTAP_DEMO_OUT: out }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const [code] = await once(p, 'exit');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/curl \/orders\/42\s+-> \{"id":42,"items":3,"path":"\/orders\/42"\} \(HTTP 200\)/);
    expect(stdout).toMatch(/dubbo getUser\s+-> \{"id":7,"name":"Ada"\}/);
    expect(stdout).toMatch(/removed orders-http: 18080 goes direct again/);
    expect(stdout).toMatch(/curl \/orders\/43\s+-> .*\(HTTP 200\)\n\s+new records: 0/);
    const records = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((r) => [r.protocol, r.endpoint, r.code, r.server.port])).toEqual([
      ['http1', '/orders/42', 200, 18080], ['http1', '/orders/missing', 404, 18080], ['dubbo', 'demo.UserService/getUser', 20, 20880],
    ]);
    expect(flowtapBpfObjects()).toEqual({ progs: [], links: 0 });
  }, 60_000);
});
