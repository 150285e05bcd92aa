/**
 * The main thread's side of a worker-isolated plugin: batches of records out, results back, and a hard
 * limit on a batch that stops making progress (the worker counts records done in shared memory, so an
 * endless loop is told apart from a long batch). A stuck worker is terminated and replaced.
 */
import { Worker } from 'node:worker_threads';
import { builtScript } from '../worker-script.js';
import type { AnyRecord } from '../records/types.js';

export type WorkerAnswer =
  | { kind: 'done'; records: (AnyRecord | null)[]; failures: { index: number; message: string }[]; modified: number }
  | { kind: 'timeout'; ms: number };


export class WorkerPlugin {
  private worker!: Worker;
  private progress!: Int32Array;
  private stopped = false;

  private constructor(private readonly path: string, private readonly timeoutMs: number) {}

  static async start(path: string, timeoutMs: number): Promise<WorkerPlugin> {
    const w = new WorkerPlugin(path, timeoutMs);
    await w.spawn();
    return w;
  }

  private async spawn(): Promise<void> {
    this.progress = new Int32Array(new SharedArrayBuffer(4));
    this.worker = new Worker(builtScript('plugin-worker.js'), { workerData: { path: this.path, progress: this.progress } });
    this.worker.unref();
    await new Promise<void>((resolve, reject) => {
      this.worker.once('message', (m: { ready?: true; error?: string }) => (m.ready ? resolve() : reject(new Error(m.error))));
      this.worker.once('error', reject);
    });
  }

  async run(records: AnyRecord[]): Promise<WorkerAnswer> {
    if (records.length === 0) return { kind: 'done', records: [], failures: [], modified: 0 };
    Atomics.store(this.progress, 0, 0);
    const t0 = performance.now();
    const answer = await new Promise<WorkerAnswer | null>((resolve) => {
      let seen = 0; // records done at the last check: none yet, so a first check with none done is a timeout
      const timer = setInterval(() => {
        const done = Atomics.load(this.progress, 0);
        if (done !== seen) { seen = done; return; }
        clearInterval(timer);
        this.worker.off('message', onMessage);
        resolve(null); // no record finished for a whole interval: stuck
      }, this.timeoutMs);
      const onMessage = (m: WorkerAnswer) => { clearInterval(timer); resolve(m); };
      this.worker.once('message', onMessage);
      this.worker.postMessage(records);
    });
    if (answer) return answer;
    const ms = performance.now() - t0;
    await this.worker.terminate();
    if (!this.stopped) await this.spawn();
    return { kind: 'timeout', ms };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.worker.terminate();
  }
}
