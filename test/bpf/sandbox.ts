/**
 * Throwaway places for the BPF tests — a cgroup and a pair of network namespaces joined by a veth — created
 * by the tests and always removed. Nothing here touches the machine's own interfaces or its root cgroup.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { cgroup2Mount, kernelVersion } from '../../src/bpf/system.js';
import { have, isRoot, runAsync } from '../tools.js';

const sh = (cmd: string) => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });

/** Why the BPF tests cannot run here, or null. */
export function bpfSkipReason(): string | null {
  if (process.platform !== 'linux') return 'BPF needs Linux';
  if (!isRoot) return 'loading BPF programs and creating network namespaces needs root';
  if (!existsSync('/usr/lib/x86_64-linux-gnu/libbpf.so.1') && sh('ldconfig -p | grep -q libbpf.so.1').status !== 0) return 'libbpf.so.1 is not installed (apt-get install -y libbpf1)';
  const [maj, min] = kernelVersion();
  if (maj < 6 || (maj === 6 && min < 6)) return `the tcx tests need Linux 6.6+, this is ${maj}.${min}`;
  if (!cgroup2Mount()) return 'no cgroup v2 hierarchy is mounted';
  for (const tool of ['ip', 'nsenter', 'curl', 'bpftool']) if (!have(tool)) return `${tool} is not installed (apt-get install -y iproute2 util-linux curl bpftool)`;
  return null;
}

let seq = 0;
const tag = () => `${process.pid % 100000}${seq++}`;

export interface Cgroup {
  path: string;
  /** Run a command inside the cgroup; resolves with its output. */
  run(cmd: string, args: string[], input?: string): Promise<{ status: number | null; stdout: string; stderr: string }>;
  remove(): void;
}

export function makeCgroup(): Cgroup {
  const path = `${cgroup2Mount()}/flowtap-test-${tag()}`;
  mkdirSync(path);
  return {
    path,
    run: (cmd, args, input) => runIn(['sh', '-c', `echo $$ > ${path}/cgroup.procs && exec "$@"`, 'sh', cmd, ...args], input),
    remove() {
      // Anything still inside (a killed test's child) is moved out to the root so the directory can go.
      const root = cgroup2Mount()!;
      for (const pid of readFileSync(`${path}/cgroup.procs`, 'utf8').split('\n').filter(Boolean)) {
        try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
        try { writeFileSync(`${root}/cgroup.procs`, pid); } catch { /* gone */ }
      }
      for (let i = 0; i < 50; i++) {
        try { rmdirSync(path); return; } catch { spawnSync('sleep', ['0.05']); }
      }
    },
  };
}

export interface NetnsPair {
  client: string;
  server: string;
  clientIf: string;
  serverIf: string;
  clientIp: string;
  serverIp: string;
  clientIp6: string;
  serverIp6: string;
  /** argv prefix that runs a command in a namespace (keeps this process's /sys, unlike ip netns exec). */
  inNs(ns: string): string[];
  remove(): void;
}

export function makeNetnsPair(): NetnsPair {
  const t = tag();
  const [client, server] = [`ftc${t}`, `fts${t}`];
  const [clientIf, serverIf] = [`ftc${t}`.slice(0, 15), `fts${t}`.slice(0, 15)];
  const octet = 1 + (Number(t) % 250);
  const pair: NetnsPair = {
    client, server, clientIf, serverIf,
    clientIp: `10.213.${octet}.1`, serverIp: `10.213.${octet}.2`,
    clientIp6: `fd00:213:${octet.toString(16)}::1`, serverIp6: `fd00:213:${octet.toString(16)}::2`,
    inNs: (ns) => ['nsenter', `--net=/run/netns/${ns}`],
    remove() {
      sh(`ip netns del ${client} 2>/dev/null; ip netns del ${server} 2>/dev/null`);
    },
  };
  const steps = [
    `ip netns add ${client}`, `ip netns add ${server}`,
    `ip link add ${clientIf} type veth peer name ${serverIf}`,
    `ip link set ${clientIf} netns ${client}`, `ip link set ${serverIf} netns ${server}`,
    `ip -n ${client} addr add ${pair.clientIp}/24 dev ${clientIf}`, `ip -n ${server} addr add ${pair.serverIp}/24 dev ${serverIf}`,
    `ip -n ${client} addr add ${pair.clientIp6}/64 dev ${clientIf} nodad`, `ip -n ${server} addr add ${pair.serverIp6}/64 dev ${serverIf} nodad`,
    `ip -n ${client} link set lo up`, `ip -n ${server} link set lo up`,
    `ip -n ${client} link set ${clientIf} up`, `ip -n ${server} link set ${serverIf} up`,
  ];
  for (const s of steps) {
    const r = sh(s);
    if (r.status !== 0) { pair.remove(); throw new Error(`${s}: ${r.stderr}`); }
  }
  return pair;
}

/** A command given as one argv (a namespace prefix and the command). */
export function runIn(argv: string[], input?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return runAsync(argv[0], argv.slice(1), input);
}

/** flowtap programs and links the kernel still has (bpftool's JSON). */
export function flowtapBpfObjects(): { progs: string[]; links: number } {
  const progs = JSON.parse(sh('bpftool -j prog show').stdout || '[]') as { id: number; name?: string }[];
  const ours = progs.filter((p) => p.name?.startsWith('flowtap_'));
  const ids = new Set(ours.map((p) => p.id));
  const links = JSON.parse(sh('bpftool -j link show').stdout || '[]') as { prog_id: number }[];
  return { progs: ours.map((p) => p.name!), links: links.filter((l) => ids.has(l.prog_id)).length };
}

/** The test controller (test/bpf/controller.ts) as a child process, spoken to in JSON lines. */
export class Controller {
  readonly lines: Record<string, unknown>[] = [];
  private readonly waiters: { test: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  readonly proc: ChildProcess;
  stderr = '';

  constructor(config: object, prefix: string[] = []) {
    const script = new URL('./controller.ts', import.meta.url).pathname;
    const argv = [...prefix, process.execPath, '--import', 'tsx', script, JSON.stringify(config)];
    this.proc = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr!.on('data', (d) => { this.stderr += d; });
    this.proc.stdin!.on('error', () => {}); // written to after it died: the test's own assertions say why
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      let l: Record<string, unknown>;
      try { l = JSON.parse(line); } catch { return; }
      this.lines.push(l);
      for (const w of [...this.waiters]) if (w.test(l)) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(l); }
    });
  }

  wait(test: (l: Record<string, unknown>) => boolean, ms = 20_000): Promise<Record<string, unknown>> {
    const have = this.lines.find(test);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`controller: no such line within ${ms} ms; stderr: ${this.stderr}; lines: ${JSON.stringify(this.lines).slice(0, 2000)}`)), ms);
      this.waiters.push({ test, resolve: (l) => { clearTimeout(t); resolve(l); } });
    });
  }

  async ready(): Promise<Record<string, unknown>> {
    const l = await this.wait((x) => 'ready' in x || 'error' in x);
    if ('error' in l) throw new Error(`controller failed: ${l.error as string}`);
    return l;
  }

  send(cmd: object): void {
    this.proc.stdin!.write(`${JSON.stringify(cmd)}\n`);
  }

  async stats(): Promise<Record<string, number>> {
    const n = this.lines.length;
    this.send({ stats: 1 });
    const l = await this.wait((x) => 'stats' in x && this.lines.indexOf(x) >= n);
    return l.stats as Record<string, number>;
  }

  records(): { protocol: string; endpoint: string; code: number | null; client: { ip: string }; server: { ip: string; port: number }; response: unknown }[] {
    return this.lines.filter((l) => 'record' in l).map((l) => l.record as never);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return Promise.resolve();
    const done = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill(signal);
    return done;
  }
}
