/**
 * Full Dubbo values (arguments, return value, exception) from hessian.js — the well-kept Hessian library —
 * only when asked (`decodeValues`), since building them costs far more than the record hot path.
 * hessian.js is loaded on first use, so importing flowtap does not load it.
 */
import { createRequire } from 'node:module';
import { countParameters } from './body.js';
import type { DubboMessage } from './decoder.js';

export interface DubboValues {
  args?: unknown[];
  value?: unknown;
  exception?: unknown;
  /** hessian.js could not decode the body. */
  error?: string;
}

interface HessianDecoder { read(withType?: boolean): unknown }
interface HessianModule { DecoderV2: new (buf: Buffer) => HessianDecoder }

let hessian: HessianModule | undefined;
export function hessianJs(): HessianModule {
  hessian ??= createRequire(import.meta.url)('hessian.js') as HessianModule;
  return hessian;
}

/**
 * Decode a Hessian 2 body's values with hessian.js. `withTypes` keeps Java types (`{ $class, $ }`), as
 * needed to encode the same values again. Never throws.
 */
export function decodeValues(msg: Pick<DubboMessage, 'type' | 'status'>, body: Buffer, withTypes = false): DubboValues {
  try {
    const d = new (hessianJs().DecoderV2)(body);
    const read = () => d.read(withTypes);
    if (!withTypes) return plain(decode(msg, d, read));
    return decode(msg, d, read);
  } catch (e) {
    return { error: `hessian.js: ${(e as Error).message}` };
  }
}

function decode(msg: Pick<DubboMessage, 'type' | 'status'>, d: HessianDecoder, read: () => unknown): DubboValues {
  {
    if (msg.type === 'request') {
      for (let i = 0; i < 4; i++) d.read(); // dubbo version, service, service version, method
      const types = d.read() as string;
      const n = countParameters(types ?? '');
      const args: unknown[] = [];
      for (let i = 0; i < n; i++) args.push(read());
      return { args };
    }
    if (msg.status !== 20) return {};
    const flag = d.read() as number;
    if (flag === 1 || flag === 4) return { value: read() };
    if (flag === 0 || flag === 3) return { exception: read() };
    return { value: null };
  }
}

/** Values made fit for a JSON record. */
function plain(v: DubboValues): DubboValues {
  const out: DubboValues = {};
  if (v.args) out.args = v.args.map((a) => jsonSafe(a));
  if ('value' in v) out.value = jsonSafe(v.value);
  if ('exception' in v) out.exception = jsonSafe(v.exception);
  return out;
}

/**
 * A JSON-safe copy: Java writes an unset Throwable.cause as a reference to the exception itself, which
 * becomes null (what getCause() returns); any other cycle becomes "[circular]"; binary becomes base64;
 * an Error keeps its name, message and fields.
 */
export function jsonSafe(v: unknown, parents: object[] = []): unknown {
  if (v === null || typeof v !== 'object') return typeof v === 'bigint' ? v.toString() : v;
  if (v instanceof Date) return v;
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (parents.length > 0 && parents[parents.length - 1] === v) return null;
  if (parents.includes(v)) return '[circular]';
  parents.push(v);
  let out: unknown;
  if (Array.isArray(v)) out = v.map((x) => jsonSafe(x, parents));
  else {
    const o: Record<string, unknown> = {};
    if (v instanceof Error) { o.name = v.name; o.message = v.message; }
    for (const [k, x] of Object.entries(v)) o[k] = jsonSafe(x, parents);
    out = o;
  }
  parents.pop();
  return out;
}
