/**
 * What the Hessian reader has seen recently, shared by every reader in the thread: short ASCII strings and
 * class definitions, each found again by its bytes. Service names, methods, attachment keys and values and
 * the classes a service sends repeat body after body; comparing bytes costs less than decoding them again.
 * Both are direct-mapped and bounded, and sharing is safe: strings are immutable and a definition kept
 * here is whole (its names decoded), so it is never read again from a buffer.
 */

/**
 * A class definition. Skipping an object needs only the field count, so the names are decoded from `at`
 * the first time an object of the class is built (hot-path bodies skip most objects).
 */
export interface ClassDef { count: number; at: number; name: string | null; fields: string[] | null }

/** Buffer's own latin1 decoder, without toString's argument handling (used by Node's internals too). */
export interface LatinBuffer extends Buffer { latin1Slice(start: number, end: number): string }

/**
 * Short ASCII strings, found by a cheap hash and checked byte for byte; their bytes live in one arena, so a
 * miss copies instead of allocating.
 */
export const SHORT = 64;
const SLOTS = 1024;
const slotBytes = Buffer.alloc(SLOTS * SHORT);
const slotLength = new Int32Array(SLOTS).fill(-1);
const slotText: string[] = new Array(SLOTS).fill('');

/** The ASCII string of `n` (≤ SHORT) bytes at `start`, from the cache or made and cached; undefined if not ASCII. */
export function shortString(b: Buffer, start: number, n: number): string | undefined {
  if (n === 0) return '';
  const slot = (n * 31 + b[start] * 7 + b[start + n - 1] * 3 + b[start + (n >> 1)]) & (SLOTS - 1);
  const at = slot * SHORT;
  if (slotLength[slot] === n) {
    let k = 0;
    while (k < n && slotBytes[at + k] === b[start + k]) k++;
    if (k === n) return slotText[slot];
  }
  for (let i = start; i < start + n; i++) if (b[i] >= 0x80) return undefined;
  const text = (b as LatinBuffer).latin1Slice(start, start + n);
  for (let k = 0; k < n; k++) slotBytes[at + k] = b[start + k]; // ≤ 64 bytes: Buffer#copy's checks cost more
  slotLength[slot] = n;
  slotText[slot] = text;
  return text;
}

/**
 * Class definitions, by their bytes. Every body defines its classes again, but a service sends the same
 * few shapes: bytes equal to a definition seen before are that definition (the grammar reads exactly those
 * bytes, and only them), so one comparison stands for the name, the count and every field name.
 */
const CLASS_SLOTS = 256;
const CLASS_PROBE = 17;
const classSlots: ({ bytes: Buffer; def: ClassDef } | null)[] = new Array(CLASS_SLOTS).fill(null);

function classSlot(b: Buffer, at: number): number {
  return (b[at] * 31 + b[at + 1] * 7 + b[at + 8] * 3 + b[at + 16]) & (CLASS_SLOTS - 1);
}

export function knownClass(b: Buffer, at: number, end: number): { bytes: Buffer; def: ClassDef } | null {
  if (end - at < CLASS_PROBE) return null;
  const k = classSlots[classSlot(b, at)];
  if (k === null) return null;
  const known = k.bytes;
  const n = known.length;
  if (n > end - at) return null;
  for (let i = 0; i < n; i++) if (known[i] !== b[at + i]) return null;
  return k;
}

export function rememberClass(b: Buffer, at: number, to: number, def: ClassDef): void {
  if (to - at < CLASS_PROBE || to - at > 4096) return;
  classSlots[classSlot(b, at)] = { bytes: Buffer.from(b.subarray(at, to)), def };
}
