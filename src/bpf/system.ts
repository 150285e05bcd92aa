/** What the machine offers for BPF interception, checked up front so errors say what to do. */
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfSetupError } from './libbpf.js';

const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;
const CAP_BPF = 39;

function effectiveCaps(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

const has = (caps: bigint, cap: number) => (caps & (1n << BigInt(cap))) !== 0n;

/** [major, minor] of the running kernel. */
export function kernelVersion(): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release());
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

const atLeast = (v: [number, number], major: number, minor: number) => v[0] > major || (v[0] === major && v[1] >= minor);

/** The mount point of the cgroup v2 hierarchy, or null. */
export function cgroup2Mount(): string | null {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, where, type] = line.split(' ');
    if (type === 'cgroup2') return where;
  }
  return null;
}

/** This process's cgroup v2 directory (from /proc/self/cgroup), or null. */
export function ownCgroup(): string | null {
  const mount = cgroup2Mount();
  const m = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'));
  return mount && m ? join(mount, m[1]) : null;
}

/** Throws a BpfSetupError with one sentence saying what to do when the interceptor cannot run here. */
export function checkSystem(modes: { cgroup: boolean; tc: boolean }): void {
  if (process.platform !== 'linux') throw new BpfSetupError(`the port interceptor needs Linux with BPF; this is ${process.platform}.`);
  const caps = effectiveCaps();
  if (!(has(caps, CAP_BPF) || has(caps, CAP_SYS_ADMIN)) || !has(caps, CAP_NET_ADMIN)) {
    throw new BpfSetupError('the port interceptor needs root, or the CAP_BPF and CAP_NET_ADMIN capabilities: run it with sudo, or grant them (setcap cap_bpf,cap_net_admin+ep "$(command -v node)").');
  }
  const v = kernelVersion();
  if (modes.cgroup && !atLeast(v, 5, 7)) throw new BpfSetupError(`the cgroup mode needs Linux 5.7 or newer (cgroup BPF links); this kernel is ${release()}.`);
  if (modes.tc && !atLeast(v, 6, 6)) throw new BpfSetupError(`the tc mode needs Linux 6.6 or newer (tcx links); this kernel is ${release()}: use mode 'cgroup' or a newer kernel.`);
  if (modes.cgroup && !cgroup2Mount()) {
    throw new BpfSetupError('no cgroup v2 hierarchy is mounted: mount one (mount -t cgroup2 none /sys/fs/cgroup/unified) or use mode \'tc\'.');
  }
}

/** The local port range the kernel picks client ports from. */
export function ephemeralPortRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return [lo, hi];
  } catch {
    return [32768, 60999];
  }
}

/** The committed BPF object files (src/bpf/programs/ in the package), found from wherever this code runs. */
export function objectPath(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'src/bpf/programs', name);
    if (existsSync(candidate)) return candidate;
    const beside = join(dir, 'programs', name);
    if (existsSync(beside)) return beside;
    dir = dirname(dir);
  }
  throw new BpfSetupError(`the BPF object ${name} is missing from the flowtap package: reinstall it, or run npm run build:bpf in a clone.`);
}
