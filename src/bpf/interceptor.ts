/**
 * PortInterceptor: steer TCP connections for a port through a proxy port, with BPF, without touching the
 * application. Two ways in, usable together:
 *  - `cgroup`: local clients in a cgroup v2 — connect() to the original port goes to the proxy on loopback,
 *    and the proxy learns the original destination with getOriginalDestination (SO_ORIGINAL_DST);
 *  - `tc`: remote clients arriving on interfaces — destination ports rewritten at ingress, flow-tracked, and
 *    the replies' source ports rewritten back at egress.
 * The proxy's own process is excluded from redirection, so its connection to the original port goes through.
 */
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { EventEmitter } from 'eventemitter3';
import { AttachType, BpfObject, counterCodec, pidCodec, portCodec, rawCodec, type BpfMap, type Link } from './object.js';
import { BpfSetupError, libbpf, setLibbpfLog } from './libbpf.js';
import { getOriginalDestination, type OriginalDestination } from './original-dst.js';
import { cgroup2Mount, checkSystem, ephemeralPortRange, objectPath, ownCgroup } from './system.js';

export interface PortMapping {
  /** The port clients connect to. */
  originalPort: number;
  /** The proxy's port they are sent to instead. */
  port: number;
}

export interface PortInterceptorOptions {
  /** `cgroup` (local clients), `tc` (remote clients on `interfaces`) or `both`. Default `cgroup`. */
  mode?: 'cgroup' | 'tc' | 'both';
  /** cgroup v2 directory whose processes are intercepted. Default: the root of the cgroup v2 hierarchy. */
  cgroupPath?: string;
  /**
   * cgroup v2 directory of the proxy's process: SO_ORIGINAL_DST is answered for sockets accepted there.
   * Default: this process's cgroup (the proxy usually runs here). The proxy need not be in `cgroupPath`.
   */
  proxyCgroupPath?: string;
  /** Interfaces for the tc mode (names). */
  interfaces?: string[];
  /** Process ids never redirected. Default: this process (the proxy). */
  excludePids?: number[];
  mappings?: PortMapping[];
  /** libbpf's own messages (verifier output, feature probes). Default: dropped. */
  log?: (level: 'warn' | 'info' | 'debug', message: string) => void;
  /** Detach everything on SIGINT/SIGTERM (then let the signal do what it would). Default true. */
  handleSignals?: boolean;
}

export interface PortInterceptorEvents {
  add: (m: PortMapping) => void;
  remove: (m: PortMapping) => void;
  warning: (message: string) => void;
  close: () => void;
}

export interface InterceptorStats {
  /** cgroup mode: connects redirected, connects left alone because the process is excluded, SO_ORIGINAL_DST answers. */
  redirected: number;
  excluded: number;
  originalDstAnswers: number;
  /** tc mode: flows redirected at SYN, packets rewritten in and out. */
  flows: number;
  packetsIn: number;
  packetsOut: number;
}

const open = new Set<PortInterceptor>();
let signalsInstalled = false;

function onSignal(signal: NodeJS.Signals): void {
  // Asked before closing: the last close takes our listeners away.
  const onlyUs = process.listenerCount(signal) === 1;
  for (const i of [...open]) if (i.handlesSignals) i.close();
  // If nobody else listens for this signal, do what it would have done without us.
  if (onlyUs) {
    uninstallSignals();
    process.kill(process.pid, signal);
  }
}
const onSigint = () => onSignal('SIGINT');
const onSigterm = () => onSignal('SIGTERM');
const onExit = () => { for (const i of [...open]) i.close(); };

function installSignals(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  process.on('exit', onExit);
}

function uninstallSignals(): void {
  if (!signalsInstalled) return;
  signalsInstalled = false;
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigterm);
  process.off('exit', onExit);
}

function ifindex(name: string): number {
  if (!/^[\w.@-]{1,15}$/.test(name)) throw new BpfSetupError(`"${name}" is not an interface name.`);
  // if_nametoindex, not /sys/class/net: /sys may belong to another network namespace (nsenter --net).
  const index = libbpf().ifIndex(name);
  if (index > 0) return index;
  const known = Object.keys(networkInterfaces()).join(', ');
  throw new BpfSetupError(`there is no interface ${name} here (known: ${known}): pass one of those in interfaces.`);
}

function checkPort(p: number, what: string): void {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`${what} must be a port number from 1 to 65535, not ${p}.`);
}

export class PortInterceptor extends EventEmitter<PortInterceptorEvents> {
  readonly mode: 'cgroup' | 'tc' | 'both';
  readonly cgroupPath: string | null;
  readonly interfaces: string[];
  readonly handlesSignals: boolean;
  private readonly objects: BpfObject[] = [];
  private readonly links: Link[] = [];
  private readonly mappings = new Map<number, number>();
  private cgroupPorts: BpfMap<number, number> | null = null;
  private tcPorts: BpfMap<number, number> | null = null;
  private tcFlows: BpfMap<Buffer, Buffer> | null = null;
  private excluded: BpfMap<number, boolean> | null = null;
  private counters: { cgroup: BpfMap<number, bigint> | null; tc: BpfMap<number, bigint> | null } = { cgroup: null, tc: null };
  private closed = false;

  /** Load the programs, attach them and apply the initial mappings. Throws a BpfSetupError saying what to do. */
  static open(options: PortInterceptorOptions = {}): PortInterceptor {
    return new PortInterceptor(options);
  }

  private constructor(options: PortInterceptorOptions) {
    super();
    this.mode = options.mode ?? 'cgroup';
    const cgroup = this.mode !== 'tc';
    const tc = this.mode !== 'cgroup';
    this.interfaces = options.interfaces ?? [];
    if (tc && this.interfaces.length === 0) throw new BpfSetupError('the tc mode needs interfaces: pass the names of the interfaces remote clients arrive on.');
    checkSystem({ cgroup, tc });
    this.cgroupPath = cgroup ? options.cgroupPath ?? cgroup2Mount() : null;
    this.handlesSignals = options.handleSignals ?? true;
    if (options.log) setLibbpfLog(options.log);
    try {
      if (cgroup) {
        const obj = BpfObject.load(objectPath('connect.bpf.o'));
        this.objects.push(obj);
        this.cgroupPorts = obj.map('port_map', portCodec);
        this.excluded = obj.map('excluded_pids', pidCodec);
        this.counters.cgroup = obj.map('counters', counterCodec);
        for (const pid of options.excludePids ?? [process.pid]) this.excluded.set(pid, true);
        for (const p of ['flowtap_connect4', 'flowtap_connect6', 'flowtap_sockops']) this.links.push(obj.attachCgroup(p, this.cgroupPath!));
        // The getsockopt hook runs for the socket's cgroup: the proxy's, where its listener was made.
        this.links.push(obj.attachCgroup('flowtap_getsockopt', options.proxyCgroupPath ?? ownCgroup() ?? this.cgroupPath!));
      }
      if (tc) {
        const obj = BpfObject.load(objectPath('tc.bpf.o'));
        this.objects.push(obj);
        this.tcPorts = obj.map('tc_port_map', portCodec);
        this.counters.tc = obj.map('counters', counterCodec);
        this.tcFlows = obj.map('flows', rawCodec(36, 4)); // struct flow_key, struct flow
        for (const name of this.interfaces) {
          const index = ifindex(name);
          this.links.push(obj.attachTcx('flowtap_tc_ingress', index, AttachType.TCX_INGRESS, name));
          this.links.push(obj.attachTcx('flowtap_tc_egress', index, AttachType.TCX_EGRESS, name));
        }
      }
    } catch (e) {
      this.release();
      throw e;
    }
    open.add(this);
    if (this.handlesSignals) installSignals();
    for (const m of options.mappings ?? []) this.add(m);
  }

  /** Send connections for `originalPort` to `port`. */
  add(m: PortMapping): void {
    this.live();
    checkPort(m.originalPort, 'originalPort');
    checkPort(m.port, 'port');
    const existing = this.mappings.get(m.originalPort);
    if (existing !== undefined) {
      throw new Error(`port ${m.originalPort} is already mapped to ${existing}: remove that mapping first.`);
    }
    if (m.originalPort === m.port) throw new Error(`port ${m.port} cannot be mapped to itself.`);
    const [lo, hi] = ephemeralPortRange();
    if (m.port >= lo && m.port <= hi) {
      this.emit('warning', `proxy port ${m.port} lies in the ephemeral port range ${lo}-${hi}: a client socket may take it first; pick a port outside it.`);
    }
    this.cgroupPorts?.set(m.originalPort, m.port);
    this.tcPorts?.set(m.originalPort, m.port);
    this.mappings.set(m.originalPort, m.port);
    this.emit('add', { ...m });
  }

  /** Stop redirecting new connections for `originalPort` (connections already redirected stay whole). */
  remove(originalPort: number): boolean {
    this.live();
    const port = this.mappings.get(originalPort);
    if (port === undefined) return false;
    this.cgroupPorts?.delete(originalPort);
    this.tcPorts?.delete(originalPort);
    this.mappings.delete(originalPort);
    this.emit('remove', { originalPort, port });
    return true;
  }

  list(): PortMapping[] {
    return [...this.mappings].map(([originalPort, port]) => ({ originalPort, port }));
  }

  /** Never redirect this process's connections (e.g. a proxy running in another process). */
  exclude(pid: number): void {
    this.live();
    this.excluded?.set(pid, true);
  }

  /**
   * The original destination of a connection the proxy accepted: SO_ORIGINAL_DST for local clients (the
   * cgroup hook, or iptables REDIRECT), else — tc mode — this socket's local address with the original port
   * mapped to the port it arrived on.
   */
  originalDestination(socket: Socket): OriginalDestination | null {
    const d = getOriginalDestination(socket);
    if (d) return d;
    for (const [originalPort, port] of this.mappings) {
      if (port === socket.localPort && socket.localAddress) {
        return { address: socket.localAddress.replace(/^::ffff:/, ''), port: originalPort, family: socket.localFamily === 'IPv6' && !socket.localAddress.startsWith('::ffff:') ? 'IPv6' : 'IPv4' };
      }
    }
    return null;
  }

  /** The mappings as the kernel has them (read back from the BPF maps), per mode. */
  kernelMappings(): { cgroup: PortMapping[]; tc: PortMapping[] } {
    const read = (m: BpfMap<number, number> | null) => (m ? [...m.entries()].map(([originalPort, port]) => ({ originalPort, port })).sort((x, y) => x.originalPort - y.originalPort) : []);
    return { cgroup: read(this.cgroupPorts), tc: read(this.tcPorts) };
  }

  /** tc mode: connections redirected and still tracked (a reset forgets one; FIN-closed ones age out). */
  trackedFlows(): number {
    let n = 0;
    if (this.tcFlows) for (const _ of this.tcFlows.entries()) n++;
    return n;
  }

  stats(): InterceptorStats {
    const c = (m: BpfMap<number, bigint> | null, i: number) => Number(m?.get(i) ?? 0n);
    return {
      redirected: c(this.counters.cgroup, 0), excluded: c(this.counters.cgroup, 1), originalDstAnswers: c(this.counters.cgroup, 2),
      flows: c(this.counters.tc, 0), packetsIn: c(this.counters.tc, 1), packetsOut: c(this.counters.tc, 2),
    };
  }

  /** What is attached where (for logs and status pages). */
  get attachments(): string[] {
    return this.links.map((l) => l.description);
  }

  /** Detach every program and unload them. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.release();
    this.emit('close');
  }

  private release(): void {
    this.closed = true;
    for (const l of this.links.splice(0)) l.detach();
    for (const o of this.objects.splice(0)) o.close();
    open.delete(this);
    if (open.size === 0) uninstallSignals();
  }

  private live(): void {
    if (this.closed) throw new Error('this PortInterceptor is closed');
  }
}
