/**
 * The shape every sink shares: records go into a bounded queue and leave in batches (by size or time),
 * a failed batch is retried with exponential backoff, and when the queue is full new records are dropped
 * and counted — so a slow or dead store can never hold up the traffic being watched.
 */
import { EventEmitter } from 'eventemitter3';
import type { ExchangeRecord } from '../records/types.js';

export interface BatchingOptions {
  /** Records held at most; past this, new records are dropped (and counted). Default 10 000. */
  maxQueue?: number;
  /** Records per batch. Default 500. */
  batchSize?: number;
  /** A partial batch leaves after this long, ms. Default 1000. */
  flushInterval?: number;
  /** First retry delay, ms; doubles per failure up to `maxBackoff`. Default 200. */
  backoff?: number;
  maxBackoff?: number;
  /** A batch the store has not answered within this long failed (and is retried), ms. Default 10 000. */
  sendTimeout?: number;
}

export interface SinkStats {
  /** Records accepted into the queue. */
  accepted: number;
  /** Records written by the store. */
  written: number;
  /** Records dropped because the queue was full. */
  dropped: number;
  /** Batches that failed (each is retried). */
  failures: number;
  /** Records the store refused for good (e.g. a mapping error in one `_bulk` item): counted, not retried. */
  rejected: number;
  queued: number;
}

export interface SinkEvents {
  /** A batch failed; it will be retried after `retryIn` ms. */
  error: (error: Error, retryIn: number) => void;
  /** The first record dropped since the queue was last below its bound. */
  drop: (dropped: number) => void;
  /** A batch was written. */
  written: (count: number) => void;
}

export interface PartialOutcome<T = ExchangeRecord> {
  /** Records the store could not take now (overloaded): sent again after a backoff. */
  retry: T[];
  /** How many records it refused for good. */
  rejected: number;
}

export interface RecordSink {
  write(record: ExchangeRecord): void;
  /** Write what is queued (retrying as configured), then release resources. */
  close(): Promise<void>;
  readonly stats: SinkStats;
}

/** `T`: what the queue holds — records, or (JsonlSink) also records' JSON text. */
/** A sink's counts before anything was written (also a stand-in for a sink another thread holds). */
export function emptySinkStats(): SinkStats {
  return { accepted: 0, written: 0, dropped: 0, failures: 0, rejected: 0, queued: 0 };
}

export abstract class BatchingSink<T = ExchangeRecord> extends EventEmitter<SinkEvents> implements RecordSink {
  /** `queued` is records, not items: the queue may hold blocks of several (`weigh`). */
  readonly stats: SinkStats = emptySinkStats();
  private queue: T[] = [];
  /** Something weighing more than one was queued: batches are then cut by weight. */
  private weighted = false;
  private timer: NodeJS.Timeout | null = null;
  private sending = false;
  private closing = false;
  private delay = 0;
  private dropping = false;
  private readonly o: Required<BatchingOptions>;

  constructor(options: BatchingOptions = {}) {
    super();
    this.o = {
      maxQueue: options.maxQueue ?? 10_000,
      batchSize: options.batchSize ?? 500,
      flushInterval: options.flushInterval ?? 1000,
      backoff: options.backoff ?? 200,
      maxBackoff: options.maxBackoff ?? 30_000,
      sendTimeout: options.sendTimeout ?? 10_000,
    };
  }

  /**
   * Send one batch to the store. Throw to have the whole batch retried; return a partial outcome when the
   * store took some records and not others (records to `retry` go back to the head of the queue).
   */
  protected abstract send(batch: T[]): Promise<void | PartialOutcome<T>>;

  /** Release the store's resources after the last batch. */
  protected async release(): Promise<void> {}

  write(record: ExchangeRecord): void {
    this.enqueue(record as T);
  }

  /** The queue is half full or more: a producer that can wait should, and leave the rest for bursts. */
  get busy(): boolean {
    return this.stats.queued >= this.o.maxQueue / 2;
  }

  /**
   * How many records an item of the queue holds: 1, but a sink that queues blocks of records (JsonlSink's
   * lines) says how many, and the bound, the batches and the counts go by records, not items.
   */
  protected weigh(item: T): number {
    void item;
    return 1;
  }

  /** Queue one item of `weight` records (bounded: past `maxQueue` records it is dropped and counted). */
  protected enqueue(record: T, weight = 1): void {
    if (this.closing) { this.stats.dropped += weight; return; }
    if (this.stats.queued + weight > this.o.maxQueue) {
      this.stats.dropped += weight;
      if (!this.dropping) { this.dropping = true; this.emit('drop', this.stats.dropped); }
      return;
    }
    if (weight !== 1) this.weighted = true;
    this.dropping = false;
    this.queue.push(record);
    this.stats.accepted += weight;
    this.stats.queued += weight;
    if (this.stats.queued >= this.o.batchSize) this.kick(0);
    else if (!this.timer && !this.sending) this.kick(this.o.flushInterval);
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    // Drain: keep sending while there is something and the store accepts it (bounded by retries below).
    let attempts = 0;
    while ((this.queue.length > 0 || this.sending) && attempts < 5) {
      if (this.sending) { await new Promise((r) => setTimeout(r, 10)); continue; }
      if (!(await this.flushOnce())) { attempts++; await new Promise((r) => setTimeout(r, Math.min(this.o.backoff * 2 ** attempts, 2000))); }
    }
    this.stats.dropped += this.stats.queued; // could not be written before closing: counted, not lost silently
    this.queue = [];
    this.stats.queued = 0;
    await this.release();
  }

  private kick(after: number): void {
    if (this.timer || this.closing) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.pump();
    }, after);
    this.timer.unref?.();
  }

  private async pump(): Promise<void> {
    if (this.sending) return;
    const ok = await this.flushOnce();
    if (this.closing) return;
    if (!ok) {
      this.delay = this.delay === 0 ? this.o.backoff : Math.min(this.delay * 2, this.o.maxBackoff);
      this.kick(this.delay);
    } else {
      this.delay = 0;
      if (this.stats.queued >= this.o.batchSize) this.kick(0);
      else if (this.queue.length > 0) this.kick(this.o.flushInterval);
    }
  }

  /** Records in these items. */
  private weightOf(items: T[]): number {
    if (!this.weighted) return items.length;
    let n = 0;
    for (const x of items) n += this.weigh(x);
    return n;
  }

  /** How many items from the head of the queue make up to `records` records (at least one). */
  private itemsFor(records: number): number {
    let n = 0;
    let k = 0;
    while (k < this.queue.length && (k === 0 || n + this.weigh(this.queue[k]) <= records)) n += this.weigh(this.queue[k++]);
    return k;
  }

  /** One batch; true when written (or nothing to do). */
  private async flushOnce(): Promise<boolean> {
    if (this.queue.length === 0) return true;
    this.sending = true;
    const batch = this.queue.slice(0, this.weighted ? this.itemsFor(this.o.batchSize) : this.o.batchSize);
    let timer: NodeJS.Timeout | undefined;
    try {
      // A store that hangs must not hold the queue forever: past sendTimeout the batch counts as failed.
      const outcome = await Promise.race([
        this.send(batch),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the store did not answer within ${this.o.sendTimeout} ms`)), this.o.sendTimeout);
        }),
      ]);
      this.queue.splice(0, batch.length);
      const retry = outcome ? outcome.retry : [];
      const rejected = outcome ? outcome.rejected : 0;
      const sent = this.weightOf(batch);
      const again = this.weightOf(retry);
      const written = sent - again - rejected;
      this.stats.written += written;
      this.stats.rejected += rejected;
      if (retry.length > 0) this.queue.unshift(...retry);
      this.stats.queued -= sent - again;
      if (written > 0) this.emit('written', written);
      if (retry.length > 0) {
        this.stats.failures++;
        this.emit('error', new Error(`the store took ${written} of ${sent} records; ${again} will be retried`), this.o.backoff);
        return false;
      }
      return true;
    } catch (e) {
      this.stats.failures++;
      this.emit('error', e as Error, this.delay === 0 ? this.o.backoff : Math.min(this.delay * 2, this.o.maxBackoff));
      return false;
    } finally {
      clearTimeout(timer);
      this.sending = false;
    }
  }
}
