/**
 * Protocol detection, once, for the proxy and the capture reader alike: which protocol the first bytes of
 * either direction open, and so which direction is the client.
 */
import type { ProtocolModule } from './session.js';

/** Bytes of each direction's start that detection looks at. */
export const DETECT_BYTES = 64;

export type Detection =
  /** `module` claims the bytes at `index`: they open a `role` message. */
  | { module: ProtocolModule; index: number; role: 'request' | 'response' }
  /** Some protocol needs more bytes to tell. */
  | 'wait'
  /** No protocol claims what was seen. */
  | null;

/** The first protocol (in `modules` order) that claims one of the directions' first bytes. */
export function detect(modules: readonly ProtocolModule[], firsts: readonly (Uint8Array | null)[]): Detection {
  let waiting = false;
  for (const module of modules) {
    for (let index = 0; index < firsts.length; index++) {
      const first = firsts[index];
      if (!first) continue;
      const role = safeClassify(module, first);
      if (role === undefined) waiting = true;
      else if (role !== null) return { module, index, role };
    }
  }
  return waiting ? 'wait' : null;
}

/** A protocol plugin's classify that throws claims nothing (and is not allowed to stop detection). */
function safeClassify(m: ProtocolModule, first: Uint8Array): 'request' | 'response' | null | undefined {
  try {
    return m.classify(first);
  } catch {
    return null;
  }
}

/** Keep at most the first DETECT_BYTES of a direction, appending a new chunk. */
export function firstBytes(seen: Buffer | null, chunk: Buffer): Buffer {
  if (seen && seen.length >= DETECT_BYTES) return seen;
  return seen ? Buffer.concat([seen, chunk]).subarray(0, DETECT_BYTES) : chunk.subarray(0, DETECT_BYTES);
}
