/**
 * The port interceptor's costs, one run: map update latency from TypeScript (flowtap's typed map over
 * libbpf) vs a raw bpf(2) BPF_MAP_UPDATE_ELEM syscall (also through koffi) vs spawning bpftool per update;
 * and local connect() rate with no hook, with the hook attached but the port unmapped, and redirected.
 * Needs root; runs in a cgroup it creates and removes.
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net, { type AddressInfo } from 'node:net';
import { BpfObject, PortInterceptor, portCodec } from '../src/bpf/index.js';
import { libbpf } from '../src/bpf/libbpf.js';
import { cgroup2Mount, objectPath } from '../src/bpf/system.js';
import type { BenchResult, Measured } from './measure.js';

const SYS_bpf = 321; // x86-64
const BPF_MAP_UPDATE_ELEM = 2;

function timeEach(n: number, fn: (i: number) => void): { perOpUs: number } {
  for (let i = 0; i < Math.min(1000, n); i++) fn(i); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return { perOpUs: Number(process.hrtime.bigint() - t0) / 1000 / n };
}

async function connectRate(port: number, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(); });
      s.on('error', reject);
    });
  }
  return n / ((performance.now() - t0) / 1000);
}

export async function benchBpf(): Promise<BenchResult> {
  if (process.getuid?.() !== 0) throw new Error('bench/bpf needs root (BPF programs and a cgroup)');
  const koffi = createRequire(import.meta.url)('koffi') as {
    alloc(t: string, n: number): unknown; address(p: unknown): bigint; encode(p: unknown, t: string, v: number): void;
  };
  const lib = libbpf();
  const N = 200_000;

  // Map updates: the connect object's port map (a hash of u16 → u16), loaded but not attached.
  const obj = BpfObject.load(objectPath('connect.bpf.o'));
  const results: Measured[] = [];
  const ratios: Record<string, number> = {};
  try {
    const map = obj.map('port_map', portCodec);
    const typed = timeEach(N, (i) => map.set(1000 + (i & 511), 2000 + (i & 1023)));
    // Raw bpf(2): union bpf_attr { u32 map_fd; u64 key; u64 value; u64 flags } with native key/value memory.
    const key = koffi.alloc('uint16_t', 1);
    const value = koffi.alloc('uint16_t', 1);
    const attr = Buffer.alloc(32);
    attr.writeUInt32LE(map.fd, 0);
    attr.writeBigUInt64LE(koffi.address(key), 8);
    attr.writeBigUInt64LE(koffi.address(value), 16);
    const raw = timeEach(N, (i) => {
      koffi.encode(key, 'uint16_t', 1000 + (i & 511));
      koffi.encode(value, 'uint16_t', 2000 + (i & 1023));
      if (lib.syscall(SYS_bpf, BPF_MAP_UPDATE_ELEM, attr, attr.length) !== 0) throw new Error('bpf(2) failed');
    });
    if (map.get(1000) === undefined) throw new Error('updates did not land');
    // bpftool: one process per update, as a shell controller would do it.
    const id = JSON.parse(spawnSync('bpftool', ['-j', 'map', 'show'], { encoding: 'utf8' }).stdout).find((m: { name: string }) => m.name === 'port_map').id;
    const SPAWNS = 50;
    const t0 = performance.now();
    for (let i = 0; i < SPAWNS; i++) {
      const r = spawnSync('bpftool', ['map', 'update', 'id', String(id), 'key', String(i & 0xff), '0', 'value', '1', '0']);
      if (r.status !== 0) throw new Error(`bpftool: ${r.stderr}`);
    }
    const spawnUs = ((performance.now() - t0) * 1000) / SPAWNS;
    const row = (name: string, us: number): Measured => ({ name: `${name}, ${us.toFixed(2)} µs/update`, opsPerSec: 1e6 / us, mbPerSec: 0, medianMs: us / 1000, passesMs: [us / 1000] });
    results.push(row('flowtap BpfMap.set (libbpf via koffi)', typed.perOpUs), row('raw bpf(2) syscall (via koffi)', raw.perOpUs), row('spawning bpftool map update', spawnUs));
    ratios['flowtap µs per map update'] = typed.perOpUs;
    ratios['raw bpf(2) µs per update'] = raw.perOpUs;
    ratios['bpftool µs per update'] = spawnUs;
    ratios['bpftool/flowtap'] = spawnUs / typed.perOpUs;
  } finally {
    obj.close();
  }

  // Connect rate from this process, moved into a fresh cgroup (and back after).
  const root = cgroup2Mount()!;
  const cg = `${root}/flowtap-bench-${process.pid}`;
  const home = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))![1];
  mkdirSync(cg);
  const server = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const C = 2000;
  const ROUNDS = 5;
  const rates = { none: [] as number[], hooked: [] as number[], redirected: [] as number[] };
  try {
    writeFileSync(`${cg}/cgroup.procs`, String(process.pid));
    await connectRate(port, 1000); // warm-up
    // Interleaved rounds (attach, measure, detach), so JIT and CPU drift fall on all three alike.
    for (let r = 0; r < ROUNDS; r++) {
      rates.none.push(await connectRate(port, C));
      const i = PortInterceptor.open({ cgroupPath: cg, excludePids: [], handleSignals: false });
      try {
        rates.hooked.push(await connectRate(port, C)); // the hook runs, the port is not mapped
        i.add({ originalPort: 19999, port });
        rates.redirected.push(await connectRate(19999, C)); // redirected to the same server
        if (i.stats().redirected < C) throw new Error('connections were not redirected');
      } finally {
        i.close();
      }
    }
    const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const perRound = (a: number[], b: number[]) => med(a.map((x, k) => x / b[k]));
    const row = (name: string, xs: number[]): Measured => ({ name, opsPerSec: med(xs), mbPerSec: 0, medianMs: 1000 / med(xs), passesMs: xs.map((x) => 1000 / x) });
    results.push(row('connect()/s, no hook', rates.none), row('connect()/s, hook attached, port not mapped', rates.hooked), row('connect()/s, redirected by the hook', rates.redirected));
    ratios['connect rate hooked/none'] = perRound(rates.hooked, rates.none);
    ratios['connect rate redirected/none'] = perRound(rates.redirected, rates.none);
  } finally {
    writeFileSync(`${root}${home}/cgroup.procs`, String(process.pid));
    server.close();
    rmdirSync(cg);
  }
  return {
    name: 'bpf',
    unit: `map updates/s (${N} each; bpftool: 50 spawns) and sequential Node connect()s/s, median of ${ROUNDS} interleaved rounds of ${C}`,
    results,
    ratios,
    targets: {},
  };
}
