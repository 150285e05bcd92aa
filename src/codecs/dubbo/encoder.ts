/**
 * Dubbo 2 frames from plain JS values, Hessian 2 bodies written by hessian.js. Java types where they
 * matter come as hessian.js typed values (`{ $class, $ }`, or js-to-java's helpers such as
 * `java.Long('9007199254740993')`); plain JS values get hessian.js's defaults.
 */
import { createRequire } from 'node:module';
import { FLAG_EVENT, FLAG_REQUEST, FLAG_TWO_WAY, HEADER_SIZE, SERIALIZATION_HESSIAN2 } from './decoder.js';
import { ResponseFlag } from './body.js';

interface HessianEncoder { write(v: unknown): void; get(): Buffer }
let Encoder: (new () => HessianEncoder) | undefined;
function encoder(): HessianEncoder {
  Encoder ??= (createRequire(import.meta.url)('hessian.js') as { EncoderV2: new () => HessianEncoder }).EncoderV2;
  return new Encoder();
}

export type RequestId = bigint | number | string;

export interface DubboRequestSpec {
  requestId: RequestId;
  /** Default true; a one-way call expects no response. */
  twoWay?: boolean;
  /** Default '2.0.2'. */
  dubboVersion?: string;
  service: string;
  /** null and '' are both valid on the wire. Default null. */
  serviceVersion?: string | null;
  method: string;
  /** JVM descriptors, e.g. `Ljava/lang/String;I`. */
  parameterTypes: string;
  args: unknown[];
  attachments?: Record<string, unknown> | Map<string, unknown>;
}

export interface DubboResponseSpec {
  requestId: RequestId;
  /** Default 20 (OK). Any other status carries `errorMessage` only. */
  status?: number;
  /** With status 20: a value (null → the null flag), or an exception (a Java Throwable as a typed value). */
  value?: unknown;
  exception?: unknown;
  /** With status 20: attachments make the flag the "_WITH_ATTACHMENTS" variant. */
  attachments?: Record<string, unknown> | Map<string, unknown>;
  /** With a status other than 20. */
  errorMessage?: string;
}

export function encodeRequest(spec: DubboRequestSpec): Buffer {
  const e = encoder();
  e.write(spec.dubboVersion ?? '2.0.2');
  e.write(spec.service);
  e.write(spec.serviceVersion ?? null);
  e.write(spec.method);
  e.write(spec.parameterTypes);
  for (const a of spec.args) e.write(a);
  e.write(ordered(spec.attachments ?? {}));
  const flag = FLAG_REQUEST | (spec.twoWay === false ? 0 : FLAG_TWO_WAY) | SERIALIZATION_HESSIAN2;
  return frame(flag, 0, spec.requestId, e.get());
}

export function encodeResponse(spec: DubboResponseSpec): Buffer {
  const status = spec.status ?? 20;
  const e = encoder();
  if (status !== 20) {
    e.write(spec.errorMessage ?? null);
    return frame(SERIALIZATION_HESSIAN2, status, spec.requestId, e.get());
  }
  const withAttachments = spec.attachments !== undefined;
  if (spec.exception !== undefined) {
    e.write(withAttachments ? ResponseFlag.EXCEPTION_WITH_ATTACHMENTS : ResponseFlag.EXCEPTION);
    e.write(spec.exception);
  } else if (spec.value === undefined || spec.value === null) {
    e.write(withAttachments ? ResponseFlag.NULL_WITH_ATTACHMENTS : ResponseFlag.NULL);
  } else {
    e.write(withAttachments ? ResponseFlag.VALUE_WITH_ATTACHMENTS : ResponseFlag.VALUE);
    e.write(spec.value);
  }
  if (withAttachments) e.write(ordered(spec.attachments!));
  return frame(SERIALIZATION_HESSIAN2, 20, spec.requestId, e.get());
}

/** A heartbeat: an event request (two-way) or its response; the body is Hessian null. */
export function encodeHeartbeat(requestId: RequestId, response = false): Buffer {
  const flag = (response ? 0 : FLAG_REQUEST | FLAG_TWO_WAY) | FLAG_EVENT | SERIALIZATION_HESSIAN2;
  return frame(flag, response ? 20 : 0, requestId, Buffer.from([0x4e]));
}

/** A Java exception as hessian.js writes it, for `encodeResponse({ exception })`. */
export function javaException(className: string, message: string | null): unknown {
  return { $class: className, $: { detailMessage: message, cause: null, stackTrace: { $class: '[java.lang.StackTraceElement', $: [] }, suppressedExceptions: null } };
}

/** hessian.js sorts a plain object's keys; a Map keeps the caller's order, as it is on the wire. */
function ordered(map: Record<string, unknown> | Map<string, unknown>): Map<string, unknown> {
  return map instanceof Map ? map : new Map(Object.entries(map));
}

function frame(flag: number, status: number, requestId: RequestId, body: Buffer): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  h[0] = 0xda;
  h[1] = 0xbb;
  h[2] = flag;
  h[3] = status;
  h.writeBigUInt64BE(BigInt.asUintN(64, BigInt(requestId)), 4);
  h.writeUInt32BE(body.length, 12);
  return Buffer.concat([h, body]);
}
