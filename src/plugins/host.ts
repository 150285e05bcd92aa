/**
 * Runs record hooks with isolation. A hook that throws leaves the record as it was, is counted, and after
 * `maxFailures` its plugin is switched off; every call is timed and calls over `budgetMs` are reported
 * (and, with `disableOverBudget`, count as failures). A plugin with `isolate: 'worker'` runs in a worker
 * thread: a batch that makes no progress for `timeoutMs` ends the worker (an endless loop included), its
 * records pass unchanged, and a fresh worker takes the next batch. Plugins never see forwarding: they run
 * on records, after decoding.
 */
import { EventEmitter } from 'eventemitter3';
import { deliver, type RecordCallbackError } from '../pipeline/deliver.js';
import type { Stage, Next } from '../pipeline/stages.js';
import { protocols as builtin } from '../pipeline/protocols.js';
import type { ProtocolModule } from '../pipeline/session.js';
import type { AnyRecord } from '../records/types.js';
import { applyResult, hooksFor } from './apply.js';
import { protocolModule } from './protocol.js';
import type { FlowtapPlugin, RecordHook } from './types.js';
import { WorkerPlugin } from './worker-plugin.js';

export interface PluginHostOptions {
  /** Throws (or worker timeouts) before a plugin is switched off. Default 10. */
  maxFailures?: number;
  /** A hook call longer than this (ms) is reported as over budget. Default 5. */
  budgetMs?: number;
  /** Over-budget calls count as failures (so a slow plugin is switched off too). Default false. */
  disableOverBudget?: boolean;
  /** Worker plugins: a batch without progress for this long (ms) ends the worker. Default 200. */
  timeoutMs?: number;
  /** Records waiting for worker plugins; past this they pass unchanged (counted as skipped). Default 10 000. */
  queue?: number;
}

export interface PluginStats {
  name: string;
  isolate: 'none' | 'worker';
  calls: number;
  failures: number;
  overBudget: number;
  timeouts: number;
  modified: number;
  dropped: number;
  skipped: number;
  totalMs: number;
  maxMs: number;
  disabled: string | null;
}

export interface PluginHostEvents {
  /** A hook threw (or its worker failed): the record went on unchanged. */
  error: (plugin: string, error: Error, record: AnyRecord) => void;
  overBudget: (plugin: string, ms: number, record: AnyRecord) => void;
  timeout: (plugin: string, ms: number) => void;
  disabled: (plugin: string, reason: string) => void;
  /** The `next` a record was handed to threw (the caller's error, not a plugin's): later records go on. */
  userError: (error: RecordCallbackError) => void;
}

interface Entry {
  plugin: FlowtapPlugin;
  worker: WorkerPlugin | null;
  stats: PluginStats;
  /** Hooks per protocol, looked up once per protocol rather than once per record. */
  hooks: Map<string, RecordHook<AnyRecord>[]>;
}

export class PluginHost extends EventEmitter<PluginHostEvents> {
  /** The protocol plugins' modules, to pass as `protocols` with the built-in ones. */
  readonly protocols: ProtocolModule[] = [];
  private readonly entries: Entry[] = [];
  private readonly opts: Required<PluginHostOptions>;
  private readonly waiting: { record: AnyRecord; next: Next }[] = [];
  private busy = false;
  /** Worker plugins not switched off: while there are none, records take the synchronous path. */
  private workers = 0;
  private idle: (() => void)[] = [];

  constructor(options: PluginHostOptions = {}) {
    super();
    this.opts = { maxFailures: 10, budgetMs: 5, disableOverBudget: false, timeoutMs: 200, queue: 10_000, ...options };
  }

  /** Add a plugin (in this thread); its protocols join `protocols`. */
  add(plugin: FlowtapPlugin): this {
    if (!plugin || typeof plugin.name !== 'string') throw new Error('a plugin is an object with a name (and hooks or protocols)');
    for (const p of plugin.protocols ?? []) this.protocols.push(protocolModule(p));
    this.entries.push({ plugin, worker: null, stats: stats(plugin.name, 'none'), hooks: new Map() });
    return this;
  }

  /** Add the plugin exported by `path`, its hooks in a worker thread (its protocols, if any, run here). */
  async addWorker(path: string, plugin: FlowtapPlugin): Promise<this> {
    for (const p of plugin.protocols ?? []) this.protocols.push(protocolModule(p));
    const worker = await WorkerPlugin.start(path, this.opts.timeoutMs);
    this.entries.push({ plugin, worker, stats: stats(plugin.name, 'worker'), hooks: new Map() });
    this.workers++;
    return this;
  }

  /**
   * The plugins' protocols, then the built-in ones: what to pass as `protocols` to a reader or proxy. A
   * plugin's detection goes first, since its protocol may look like a built-in one (a text protocol's
   * `GET key` begins like an HTTP request line); it must refuse what is not its own.
   */
  get allProtocols(): ProtocolModule[] {
    return [...this.protocols, ...builtin];
  }

  get stats(): PluginStats[] {
    return this.entries.map((e) => ({ ...e.stats }));
  }

  /** A pipeline stage: `pipeline(host.stage(), mask(), tee(sink))`. */
  stage(): Stage {
    return (record, next) => this.process(record, next);
  }

  /** Pass `record` through every plugin, then to `next` (dropped records never reach it). */
  process(record: AnyRecord, next: Next): void {
    if (this.workers === 0) {
      const out = this.runInline(record, 0, this.entries.length);
      if (out) next(out);
      return;
    }
    if (this.waiting.length >= this.opts.queue) {
      for (const e of this.entries) if (e.worker) e.stats.skipped++;
      next(record);
      return;
    }
    this.waiting.push({ record, next });
    if (!this.busy) { this.busy = true; setImmediate(() => { void this.pump(); }); }
  }

  /** Resolves once every record handed to `process` has been passed on. */
  drain(): Promise<void> {
    if (!this.busy && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  async close(): Promise<void> {
    await this.drain();
    await Promise.all(this.entries.map((e) => e.worker?.stop()));
  }

  /** In-process plugins from..to over one record; null when one dropped it. */
  private runInline(record: AnyRecord, from: number, to: number): AnyRecord | null {
    let r: AnyRecord | null = record;
    for (let i = from; i < to && r; i++) {
      const e = this.entries[i];
      if (e.worker || e.stats.disabled) continue;
      r = this.call(e, r);
    }
    return r;
  }

  private call(e: Entry, record: AnyRecord): AnyRecord | null {
    let r: AnyRecord | null = record;
    let hooks = e.hooks.get(record.protocol);
    if (!hooks) e.hooks.set(record.protocol, hooks = hooksFor(e.plugin, record));
    for (const hook of hooks) {
      if (!r) break;
      const t0 = performance.now();
      let result;
      try {
        result = hook(r);
      } catch (err) {
        this.failed(e, err instanceof Error ? err : new Error(String(err)), r);
        continue; // the record as it was
      } finally {
        this.timed(e, performance.now() - t0, r);
      }
      const out = applyResult(r, result);
      if (out === null) e.stats.dropped++;
      else if (out !== r) e.stats.modified++;
      r = out;
    }
    return r;
  }

  private timed(e: Entry, ms: number, r: AnyRecord): void {
    e.stats.calls++;
    e.stats.totalMs += ms;
    if (ms > e.stats.maxMs) e.stats.maxMs = ms;
    if (ms <= this.opts.budgetMs) return;
    e.stats.overBudget++;
    this.emit('overBudget', e.plugin.name, ms, r);
    if (this.opts.disableOverBudget && e.stats.overBudget >= this.opts.maxFailures) this.disable(e, `over its ${this.opts.budgetMs} ms budget ${e.stats.overBudget} times`);
  }

  private failed(e: Entry, err: Error, r: AnyRecord): void {
    e.stats.failures++;
    this.emit('error', e.plugin.name, err, r);
    if (e.stats.failures >= this.opts.maxFailures) this.disable(e, `${e.stats.failures} failures (last: ${err.message})`);
  }

  private disable(e: Entry, reason: string): void {
    if (e.stats.disabled) return;
    e.stats.disabled = reason;
    if (e.worker) this.workers--;
    this.emit('disabled', e.plugin.name, reason);
    void e.worker?.stop();
  }

  /** One batch at a time through every plugin, in order; records leave in the order they came. */
  private async pump(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, 256);
      let records: (AnyRecord | null)[] = batch.map((b) => b.record);
      for (let i = 0; i < this.entries.length; i++) {
        const e = this.entries[i];
        if (e.stats.disabled) continue;
        if (!e.worker) { records = records.map((r) => r && this.call(e, r)); continue; }
        records = await this.runWorker(e, records);
      }
      // Off the caller's stack now: a `next` that throws would end the pump and strand every later record.
      batch.forEach((b, i) => { const r = records[i]; if (r) deliver(b.next, r, this.reportUserError); });
    }
    this.busy = false;
    for (const f of this.idle.splice(0)) f();
  }

  private readonly reportUserError = (e: RecordCallbackError): void => { this.emit('userError', e); };

  private async runWorker(e: Entry, records: (AnyRecord | null)[]): Promise<(AnyRecord | null)[]> {
    const live = records.filter((r): r is AnyRecord => r !== null);
    const t0 = performance.now();
    const answer = await e.worker!.run(live);
    const ms = performance.now() - t0;
    e.stats.calls += live.length;
    e.stats.totalMs += ms;
    if (ms / Math.max(1, live.length) > e.stats.maxMs) e.stats.maxMs = ms / Math.max(1, live.length);
    if (answer.kind === 'timeout') {
      e.stats.timeouts++;
      this.emit('timeout', e.plugin.name, answer.ms);
      e.stats.failures++;
      if (e.stats.failures >= this.opts.maxFailures) this.disable(e, `${e.stats.timeouts} worker timeouts`);
      return records; // unchanged
    }
    for (const f of answer.failures) this.failed(e, new Error(f.message), live[f.index]);
    e.stats.modified += answer.modified;
    let k = 0;
    return records.map((r) => {
      if (r === null) return null;
      const out = answer.records[k++];
      if (out === null) e.stats.dropped++;
      return out;
    });
  }
}

function stats(name: string, isolate: 'none' | 'worker'): PluginStats {
  return { name, isolate, calls: 0, failures: 0, overBudget: 0, timeouts: 0, modified: 0, dropped: 0, skipped: 0, totalMs: 0, maxMs: 0, disabled: null };
}
