/**
 * A tap proxy over several processes on one port: node:cluster forks `workers` processes, each a whole
 * TapProxy (forwarding, decoding, plugins, masking, mirroring), and the primary hands them connections
 * round-robin (Node's default on Linux; an accept race would give one process a whole burst of connects).
 * A connection lives in one process from accept to close, so no byte crosses a process boundary on the
 * forwarding path. Records come back to this process as batched JSON lines and are emitted here, where the
 * sinks live; stats are summed over the processes, those that exited included.
 *
 * node:cluster is one per process: a host that forks cluster workers of its own should not also run a
 * TapCluster in the same primary (each fork here sets `exec` to flowtap's worker script).
 */
import cluster, { type Worker } from 'node:cluster';
import net, { type AddressInfo } from 'node:net';
import { EventEmitter } from 'eventemitter3';
import type { PluginFile } from '../plugins/load.js';
import type { PluginStats } from '../plugins/host.js';
import { emptySinkStats, type SinkStats } from '../sinks/batching.js';
import type { AnyRecord } from '../records/types.js';
import type { MirrorOptions, ShadowStats } from '../replay/mirror.js';
import { builtScript } from '../worker-script.js';
import { deliver, deliverLines, forEachLine, type RecordCallbackError } from './deliver.js';
import type { TapProxyOptions, TapProxyStats, Upstream } from './tap-proxy.js';

/** What a process of the cluster runs: everything must cross a process boundary (no functions). */
export type ClusterProxyOptions = Omit<TapProxyOptions, 'upstream' | 'mirror' | 'protocols' | 'protos' | 'connectionIdPrefix'> & { upstream: Upstream };

export interface TapClusterOptions {
  /** Processes. Default: 2. */
  workers?: number;
  proxy: ClusterProxyOptions;
  /** Plugin modules loaded in every process (`loadPlugins`' files). */
  plugins?: readonly (string | PluginFile)[];
  /** Mask secrets (the `mask()` stage) in each process before records leave it. Default false. */
  mask?: boolean;
  /** Mirror from each process (each has its own queues and pools; `mirrorStats` sums them per target). */
  mirror?: MirrorOptions;
  /** Record bytes a process may have in flight to the primary before it drops new records (counted). Default 16 MiB. */
  maxPending?: number;
  /** A process that exits unexpectedly is replaced, at most this many times a minute. Default 10. */
  maxRestarts?: number;
}

export interface ClusterWorkerConfig {
  proxy: TapProxyOptions & { upstream: Upstream };
  plugins?: readonly (string | PluginFile)[];
  mask: boolean;
  mirror?: MirrorOptions;
  maxPending: number;
  statsInterval: number;
}

export interface WorkerReport {
  proxy: TapProxyStats;
  /** The process's decoding-thread sinks (`proxy.sinks`). */
  sinks: SinkStats[];
  recordsDropped: number;
  mirror: ShadowStats[];
  plugins: PluginStats[];
}

export type ClusterMessage =
  | { t: 'config'; config: ClusterWorkerConfig }
  | { t: 'stop' }
  | { t: 'ready' }
  | { t: 'report'; id: number }
  | { t: 'listening'; address: AddressInfo }
  | { t: 'fatal'; message: string; code?: string }
  | { t: 'records'; text: string; count: number }
  | { t: 'stats'; report: WorkerReport; final: boolean; id?: number }
  | { t: 'event'; name: 'upstreamError' | 'tapError'; message: string; code?: string; connectionId: string }
  | { t: 'event'; name: 'sinkError'; message: string; sink: number };

export interface TapClusterStats extends TapProxyStats {
  /** Processes running now. */
  workers: number;
  /** Processes that exited unexpectedly and were replaced. */
  restarts: number;
  /** Records dropped in a process because this one was not taking them fast enough. */
  recordsDropped: number;
}

export interface TapClusterEvents {
  record: (record: AnyRecord) => void;
  /**
   * The same records as JSON lines, as a process sent them (`text` ends with a newline; `count` lines):
   * for a consumer that writes JSON anyway (`JsonlSink#writeLines`). Records are parsed only when
   * something listens to `record`.
   */
  lines: (text: string, count: number) => void;
  upstreamError: (error: Error & { code?: string }, info: { connectionId: string }) => void;
  tapError: (error: Error, info: { connectionId: string }) => void;
  userError: (error: RecordCallbackError) => void;
  /** A sink one process opened in its decoding thread (`proxy.sinks`, by index) failed a batch. */
  sinkError: (error: Error, sink: number) => void;
  /** A process exited unexpectedly; `replaced` says whether a new one took its place. */
  workerExit: (info: { worker: number; code: number | null; signal: string | null; replaced: boolean }) => void;
}

const COUNTERS = ['connections', 'open', 'records', 'bytesFromClients', 'bytesFromUpstream', 'upstreamErrors', 'tapErrors',
  'userErrors', 'tlsErrors', 'decodeShed', 'idleClosed'] as const satisfies readonly (keyof TapProxyStats)[];

/** A running process (removed once it exits; its last report goes to `retired`). */
interface Member { worker: Worker; index: number; report: WorkerReport | null }

export class TapCluster extends EventEmitter<TapClusterEvents> {
  private readonly members = new Map<number, Member>();
  /** What processes that are gone had counted (their `open` connections are closed). */
  private readonly retired: WorkerReport[] = [];
  private restarts = 0;
  private restartTimes: number[] = [];
  private closing = false;
  private addr: AddressInfo | null = null;
  private userErrors = 0;
  private asked = 0;
  private config: ClusterWorkerConfig;

  constructor(private readonly opts: TapClusterOptions) {
    super();
    const n = opts.workers ?? 2;
    if (!Number.isInteger(n) || n < 1) throw new Error(`workers must be a whole number ≥ 1, not ${n}`);
    if (!cluster.isPrimary) throw new Error('a TapCluster runs in the primary process');
    if (opts.proxy.sinks?.length) {
      // Said here, once, rather than by every process failing to start.
      if (opts.proxy.decodeIn !== 'worker') throw new Error("proxy.sinks are opened in each process's decoding thread: they need decodeIn 'worker'");
      if (opts.plugins?.length || opts.mirror) throw new Error('proxy.sinks cannot go with plugins or mirror (they need the records in the process)');
    }
    this.config = {
      proxy: opts.proxy, plugins: opts.plugins, mask: opts.mask ?? false, mirror: opts.mirror,
      maxPending: opts.maxPending ?? 16 << 20, statsInterval: 250,
    };
  }

  /** Fork the processes; resolves once every one listens (on the same port: port 0 picks one for all). */
  async listen(): Promise<AddressInfo> {
    const n = this.opts.workers ?? 2;
    // Every process listens on one port; node:cluster shares one handle per address and port. Port 0
    // would be shared too, with any other cluster in this process that asked for port 0: pick a free port
    // here instead.
    if (this.config.proxy.listen.port === 0) {
      const host = this.config.proxy.listen.host ?? '127.0.0.1';
      this.config.proxy = { ...this.config.proxy, listen: { host, port: await freePort(host) } };
    }
    const all = await Promise.allSettled(Array.from({ length: n }, (_, i) => this.fork(i + 1)));
    const failed = all.find((r) => r.status === 'rejected');
    if (failed) {
      await this.close();
      throw (failed as PromiseRejectedResult).reason;
    }
    this.addr = (all[0] as PromiseFulfilledResult<AddressInfo>).value;
    return this.addr;
  }

  get address(): AddressInfo | null { return this.addr; }

  get stats(): TapClusterStats {
    const s = { workers: 0, restarts: this.restarts, recordsDropped: 0 } as TapClusterStats;
    for (const k of COUNTERS) s[k] = 0;
    const add = (r: WorkerReport, live: boolean) => {
      for (const k of COUNTERS) if (live || k !== 'open') s[k] += r.proxy[k];
      s.recordsDropped += r.recordsDropped;
    };
    for (const r of this.retired) add(r, false);
    s.workers = this.members.size;
    for (const m of this.members.values()) if (m.report) add(m.report, true);
    s.userErrors += this.userErrors;
    return s;
  }

  /**
   * `stats` are as of each process's last report (every 250 ms); this asks every process for its counts
   * now and resolves with the sum.
   */
  async refreshStats(): Promise<TapClusterStats> {
    await Promise.all([...this.members.values()].filter((m) => m.worker.isConnected()).map((m) => new Promise<void>((resolve) => {
      const done = () => { m.worker.off('message', onMessage); m.worker.off('exit', done); resolve(); };
      const id = ++this.asked;
      const onMessage = (x: ClusterMessage) => { if (x.t === 'stats' && x.id === id) done(); };
      m.worker.on('message', onMessage);
      m.worker.once('exit', done);
      m.worker.send({ t: 'report', id } satisfies ClusterMessage);
    })));
    return this.stats;
  }

  /**
   * With `proxy.sinks` (each process's decoding thread writes the records to the stores itself, none come
   * here): each sink's counts, summed over the processes, as of their last reports.
   */
  get sinkStats(): SinkStats[] {
    const out = (this.opts.proxy.sinks ?? []).map(emptySinkStats);
    const add = (r: WorkerReport, live: boolean) => r.sinks.forEach((x, i) => {
      const o = out[i];
      if (!o) return;
      o.accepted += x.accepted; o.written += x.written; o.failures += x.failures; o.rejected += x.rejected;
      // What a process that has exited still held is lost with it: dropped, not queued.
      if (live) { o.dropped += x.dropped; o.queued += x.queued; } else o.dropped += x.dropped + x.queued;
    });
    for (const r of this.retired) add(r, false);
    for (const m of this.members.values()) if (m.report) add(m.report, true);
    return out;
  }

  /** Per shadow target, summed over the processes. */
  get mirrorStats(): ShadowStats[] {
    return sumBy(this.reports().flatMap((r) => r.mirror), (x) => x.target, ['mirrored', 'answered', 'failed', 'dropped', 'skipped', 'queued']);
  }

  /** Per plugin, summed over the processes (`disabled` if any process switched it off). */
  get pluginStats(): PluginStats[] {
    return sumBy(this.reports().flatMap((r) => r.plugins), (x) => x.name, ['calls', 'failures', 'overBudget', 'timeouts', 'modified', 'dropped', 'skipped']);
  }

  /** Stop every process: each stops accepting, ends its connections, and sends what it still has. */
  async close(): Promise<void> {
    this.closing = true;
    const exits: Promise<void>[] = [];
    for (const m of this.members.values()) {
      exits.push(new Promise<void>((resolve) => {
        const kill = setTimeout(() => m.worker.process.kill('SIGKILL'), 10_000);
        m.worker.once('exit', () => { clearTimeout(kill); resolve(); });
      }));
      if (m.worker.isConnected()) m.worker.send({ t: 'stop' } satisfies ClusterMessage);
      else m.worker.process.kill('SIGKILL');
    }
    await Promise.all(exits);
  }

  private reports(): WorkerReport[] {
    return [...this.retired, ...[...this.members.values()].flatMap((m) => (m.report ? [m.report] : []))];
  }

  private fork(index: number): Promise<AddressInfo> {
    cluster.setupPrimary({ exec: builtScript('tap-worker.js').pathname, args: [], serialization: 'advanced' });
    const worker = cluster.fork();
    const member: Member = { worker, index, report: null };
    this.members.set(worker.id, member);
    const config: ClusterWorkerConfig = {
      ...this.config,
      // Connection ids are unique in a run: each process (a replacement too) numbers its own after its id.
      proxy: { ...this.config.proxy, connectionIdPrefix: `${worker.id}-` },
    };
    return new Promise<AddressInfo>((resolve, reject) => {
      let up = false;
      worker.on('message', (m: ClusterMessage) => {
        if (m.t === 'records') { this.lines(m.text, m.count); this.records(m.text); }
        else if (m.t === 'ready') worker.send(this.closing ? { t: 'stop' } : { t: 'config', config } satisfies ClusterMessage);
        else if (m.t === 'stats') member.report = m.report;
        else if (m.t === 'listening') { up = true; resolve(m.address); }
        else if (m.t === 'fatal') reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
        else if (m.t === 'event') {
          if (m.name === 'sinkError') { this.emit('sinkError', new Error(m.message), m.sink); return; }
          const e = Object.assign(new Error(m.message), m.code ? { code: m.code } : {});
          if (m.name === 'upstreamError') this.emit('upstreamError', e, { connectionId: m.connectionId });
          else this.emit('tapError', e, { connectionId: m.connectionId });
        }
      });
      worker.on('exit', (code, signal) => {
        this.members.delete(worker.id);
        if (member.report) this.retired.push(member.report);
        if (!up) { reject(new Error(`tap worker ${index} exited (${signal ?? `code ${code}`}) before listening`)); return; }
        if (this.closing) return;
        const t = Date.now();
        this.restartTimes = this.restartTimes.filter((x) => t - x < 60_000);
        const replaced = this.restartTimes.length < (this.opts.maxRestarts ?? 10);
        this.emit('workerExit', { worker: index, code, signal, replaced });
        if (!replaced) return;
        this.restartTimes.push(t);
        this.restarts++;
        this.fork(index).catch((e: Error) => this.emit('tapError', e, { connectionId: '' }));
      });
    });
  }

  private readonly reportUserError = (e: RecordCallbackError): void => {
    this.userErrors++;
    this.emit('userError', e);
  };

  private lines(text: string, count: number): void {
    deliverLines(this.listeners('lines'), text, count, this.reportUserError, this);
  }

  private records(text: string): void {
    const listeners = this.listeners('record');
    if (listeners.length === 0) return;
    forEachLine(text, (line) => {
      const r = JSON.parse(line) as AnyRecord;
      for (const l of listeners) deliver(l, r, this.reportUserError, this);
    });
  }
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function sumBy<T extends object>(items: T[], key: (x: T) => string, fields: readonly (keyof T)[]): T[] {
  const out = new Map<string, T>();
  for (const x of items) {
    const k = key(x);
    const acc = out.get(k);
    if (!acc) { out.set(k, { ...x }); continue; }
    for (const f of fields) (acc[f] as number) += x[f] as number;
    if ('disabled' in x && x.disabled && !('disabled' in acc && acc.disabled)) (acc as { disabled?: unknown }).disabled = x.disabled;
  }
  return [...out.values()];
}
