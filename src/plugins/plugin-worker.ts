/** Inside a worker thread: load one plugin, run its record hooks over each batch the host sends. */
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import type { AnyRecord } from '../records/types.js';
import { applyResult, hooksFor } from './apply.js';
import type { FlowtapPlugin } from './types.js';

const { path, progress } = workerData as { path: string; progress: Int32Array };

async function main(): Promise<void> {
  let plugin: FlowtapPlugin;
  try {
    const mod = await import(pathToFileURL(path).href);
    const exported = mod.default ?? mod;
    plugin = (typeof exported === 'function' ? await exported() : exported) as FlowtapPlugin;
  } catch (e) {
    parentPort!.postMessage({ error: `cannot load plugin ${path}: ${(e as Error).message}` });
    return;
  }
  parentPort!.on('message', (records: AnyRecord[]) => {
    const out: (AnyRecord | null)[] = [];
    const failures: { index: number; message: string }[] = [];
    let modified = 0;
    records.forEach((record, index) => {
      let r: AnyRecord | null = record;
      for (const hook of hooksFor(plugin, record)) {
        if (!r) break;
        try {
          const next = applyResult(r, hook(r));
          if (next !== r && next !== null) modified++;
          r = next;
        } catch (e) {
          failures.push({ index, message: (e as Error)?.message ?? String(e) });
        }
      }
      out.push(r);
      Atomics.add(progress, 0, 1);
    });
    parentPort!.postMessage({ kind: 'done', records: out, failures, modified });
  });
  parentPort!.postMessage({ ready: true });
}

void main();
