/** Starting and stopping real tools (tcpdump, tshark, curl) for tests; skip reasons when they are missing. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

export const isRoot = process.getuid?.() === 0;

/** Why real-traffic tests cannot run here, or null when they can. Printed, so a skip is never silent. */
export function captureSkipReason(extra: string[] = []): string | null {
  for (const c of ['tcpdump', 'tshark', ...extra]) if (!have(c)) return `${c} is not installed (apt-get install -y tcpdump tshark curl)`;
  if (!isRoot) return 'capturing on loopback needs root (or CAP_NET_RAW)';
  return null;
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'flowtap-test-'));
}

export interface Capture { stop(): Promise<void> }

/**
 * tcpdump on an interface with a filter; resolves once it is listening. Immediate mode, so nothing waits in a
 * buffer at stop; a 256 MiB kernel buffer, because loopback moves 64 KiB segments faster than the default
 * 2 MiB buffer drains (the capture then has real holes, which flowtap reports as gaps).
 */
export async function startCapture(iface: string, file: string, filter: string): Promise<Capture> {
  const p = spawn('tcpdump', ['-i', iface, '--immediate-mode', '-B', String(256 * 1024), '-U', '-s', '0', '-w', file, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
    p.stderr!.on('data', (d) => {
      err += d;
      if (err.includes('listening on')) { clearTimeout(t); resolve(); }
    });
    p.on('exit', (code) => { clearTimeout(t); reject(new Error(`tcpdump exited ${code}: ${err}`)); });
  });
  return { stop: () => stopProcess(p) };
}

async function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  // Let the last packets through the kernel before asking tcpdump to finish.
  await new Promise((r) => setTimeout(r, 300));
  const done = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGINT');
  await done;
}

export function run(cmd: string, args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 256 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function runAsync(cmd: string, args: string[], input?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (input !== undefined) {
      p.stdin!.on('error', () => {}); // a child that exits without reading its input
      p.stdin!.end(input);
    }
    // Decode across chunk boundaries: a multi-byte character split between two pipe reads must not
    // become two replacement characters (it did, now and then, for the Java peer's non-ASCII output).
    p.stdout!.setEncoding('utf8');
    p.stderr!.setEncoding('utf8');
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d) => { stdout += d; });
    p.stderr!.on('data', (d) => { stderr += d; });
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A free loopback port, for a peer that cannot be asked to pick one and tell us. */
export async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * Things a test opened, closed after it in reverse order (registered with the test file's afterEach), and
 * `listen`, which starts a server on a free loopback port and closes it the same way.
 */
export function cleanups(afterEach: (fn: () => Promise<void>) => void) {
  const closers: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => { for (const c of closers.splice(0).reverse()) await c(); });
  async function listen(server: net.Server): Promise<number> {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => new Promise<void>((r) => server.close(() => r())));
    return (server.address() as AddressInfo).port;
  }
  return { closers, listen };
}

/**
 * Whether tshark flags a capture's TCP as lost, out of order or retransmitted. On a loaded machine tcpdump
 * can write a retransmission after the segment that follows it; flowtap reassembles that, but tshark's HTTP
 * dissection then misses the message, so its view can only be held as a lower bound.
 */
export function captureReordered(file: string): boolean {
  const a = run('tshark', ['-r', file, '-Y', 'tcp.analysis.lost_segment || tcp.analysis.out_of_order || tcp.analysis.retransmission']);
  return a.stdout.trim().length > 0;
}

/** `ours` equals `theirs` as a multiset; with `atLeast`, holds every one of `theirs` (and maybe more). */
export function sameMessages<T>(ours: T[], theirs: T[], atLeast: boolean, expectFn: (v: unknown, m?: string) => { toEqual(x: unknown): void; toBeGreaterThanOrEqual(n: number): void }): void {
  const sorted = (x: T[]) => [...x].sort((p, q) => String(p).localeCompare(String(q)));
  if (!atLeast) { expectFn(sorted(ours)).toEqual(sorted(theirs)); return; }
  const left = [...ours];
  for (const x of theirs) {
    const i = left.indexOf(x);
    expectFn(i, `tshark shows ${String(x)}, flowtap does not`).toBeGreaterThanOrEqual(0);
    left.splice(i, 1);
  }
}
