/**
 * A full garbage collection, with or without `--expose-gc` (vitest runs without it): the V8 flag can be
 * set at run time, and a fresh context then sees `gc`. Heap checks are meaningless without it.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined = globalThis.gc;

export function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}
