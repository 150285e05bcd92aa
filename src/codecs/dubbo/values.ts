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

interface HessianDecoder { read(): unknown; byteBuffer: { position(p?: number): number } }
interface HessianModule { DecoderV2: new (buf: Buffer) => HessianDecoder }

let hessian: HessianModule | undefined;
export function hessianJs(): HessianModule {
  hessian ??= createRequire(import.meta.url)('hessian.js') as HessianModule;
  return hessian;
}

/** Decode a Hessian 2 body's values with hessian.js. Never throws. */
export function decodeValues(msg: Pick<DubboMessage, 'type' | 'status' | 'response'>, body: Buffer): DubboValues {
  try {
    const d = new (hessianJs().DecoderV2)(body);
    if (msg.type === 'request') {
      for (let i = 0; i < 4; i++) d.read(); // dubbo version, service, service version, method
      const types = d.read() as string;
      const n = countParameters(types ?? '');
      const args: unknown[] = [];
      for (let i = 0; i < n; i++) args.push(d.read());
      return { args };
    }
    if (msg.status !== 20) return {};
    const flag = d.read() as number;
    if (flag === 1 || flag === 4) return { value: d.read() };
    if (flag === 0 || flag === 3) return { exception: d.read() };
    return { value: null };
  } catch (e) {
    return { error: `hessian.js: ${(e as Error).message}` };
  }
}
