/** Dubbo 2 bodies in Hessian 2 (serialization id 2), read for records: names, types, attachments, outcome. */
import { Hessian2Reader } from './hessian2.js';

export interface DubboRequestBody {
  dubboVersion: string | null;
  service: string | null;
  serviceVersion: string | null;
  method: string | null;
  /** JVM descriptors as sent, e.g. `Ljava/lang/String;I[J`. */
  parameterTypes: string | null;
  attachments: Record<string, unknown>;
}

/** Response flags (the int after status 20). */
export const ResponseFlag = {
  EXCEPTION: 0, VALUE: 1, NULL: 2, EXCEPTION_WITH_ATTACHMENTS: 3, VALUE_WITH_ATTACHMENTS: 4, NULL_WITH_ATTACHMENTS: 5,
} as const;

export interface DubboResponseBody {
  /** The Hessian int flag after status 20 (null for other statuses). */
  flag: number | null;
  kind: 'value' | 'null' | 'exception' | 'error';
  /** Exception message (status 20 + exception) or the error string (other statuses). */
  errorMessage: string | null;
  /** Java class of the exception, when there is one. */
  exceptionClass: string | null;
  attachments: Record<string, unknown> | null;
}

/** Number of parameters in a JVM method descriptor's parameter list (`Ljava/lang/String;I[J` → 3). */
export function countParameters(desc: string): number {
  let n = 0;
  for (let i = 0; i < desc.length; i++) {
    let c = desc.charCodeAt(i);
    while (c === 0x5b /* [ */ && i + 1 < desc.length) c = desc.charCodeAt(++i);
    if (c === 0x4c /* L */) {
      const end = desc.indexOf(';', i);
      if (end < 0) return -1;
      i = end;
    } else if ('ZBCDFIJSV'.indexOf(desc[i]) < 0) {
      return -1;
    }
    n++;
  }
  return n;
}

/** Read a request body; arguments are skipped. `error` is set when the body does not parse. */
/** Dubbo's generic-call methods (GenericService): the real method and its types are the first two arguments. */
const GENERIC = new Set(['$invoke', '$invokeAsync']);

const PRIMITIVES: Record<string, string> = {
  boolean: 'Z', byte: 'B', char: 'C', short: 'S', int: 'I', long: 'J', float: 'F', double: 'D', void: 'V',
};

/** A Java type name as generic calls give it (`long`, `java.lang.String`, `int[]`, `[Ljava.lang.String;`) as a descriptor. */
function descriptorOf(name: string): string {
  if (name.startsWith('[')) return name.replace(/\./g, '/');
  if (name.endsWith('[]')) return '[' + descriptorOf(name.slice(0, -2));
  return PRIMITIVES[name] ?? `L${name.replace(/\./g, '/')};`;
}

export function readRequestBody(buf: Buffer, start: number, end: number): { body: DubboRequestBody; error: string | null; argsAt: number } {
  const r = new Hessian2Reader(buf, start, end);
  const body: DubboRequestBody = {
    dubboVersion: r.readString(),
    service: r.readString(),
    serviceVersion: r.readString(),
    method: r.readString(),
    parameterTypes: r.readString(),
    attachments: {},
  };
  const argsAt = r.pos;
  if (r.error) return { body, error: r.error, argsAt };
  const n = countParameters(body.parameterTypes ?? '');
  if (n < 0) return { body, error: `bad parameter descriptor "${body.parameterTypes}"`, argsAt };
  let i = 0;
  if (GENERIC.has(body.method ?? '') && n === 3) {
    // A generic call ($invoke(method, parameterTypes, args)): the record names the method really called.
    const method = r.read();
    const types = r.read();
    i = 2;
    if (!r.error && typeof method === 'string') {
      body.method = method;
      body.parameterTypes = Array.isArray(types) && types.every((t) => typeof t === 'string') ? types.map(descriptorOf).join('') : null;
    }
  }
  for (; i < n && !r.error; i++) r.skip();
  if (!r.error && !r.done) {
    const a = r.read();
    if (a !== null && typeof a === 'object' && !Array.isArray(a)) body.attachments = a as Record<string, unknown>;
  }
  return { body, error: r.error, argsAt };
}

/** Read a response body for the record: flag, outcome, exception message, attachments; the value is skipped. */
export function readResponseBody(buf: Buffer, start: number, end: number, status: number): { body: DubboResponseBody; error: string | null } {
  const r = new Hessian2Reader(buf, start, end);
  const body: DubboResponseBody = { flag: null, kind: 'error', errorMessage: null, exceptionClass: null, attachments: null };
  if (status !== 20) {
    // Any other status carries just an error message string.
    body.errorMessage = start < end ? r.readString() : null;
    return { body, error: r.error };
  }
  const flag = r.readInt();
  body.flag = Number.isNaN(flag) ? null : flag;
  switch (flag) {
    case ResponseFlag.VALUE:
    case ResponseFlag.VALUE_WITH_ATTACHMENTS:
      body.kind = 'value';
      r.skip();
      break;
    case ResponseFlag.NULL:
    case ResponseFlag.NULL_WITH_ATTACHMENTS:
      body.kind = 'null';
      break;
    case ResponseFlag.EXCEPTION:
    case ResponseFlag.EXCEPTION_WITH_ATTACHMENTS: {
      body.kind = 'exception';
      const ex = r.readObjectFields(['detailMessage']);
      if (ex) {
        body.exceptionClass = ex.$class;
        body.errorMessage = typeof ex.detailMessage === 'string' ? ex.detailMessage : ex.$class;
      }
      break;
    }
    default:
      return { body, error: r.error ?? `unknown response flag ${flag}` };
  }
  if (flag >= 3 && !r.error) {
    const a = r.read();
    if (a !== null && typeof a === 'object' && !Array.isArray(a)) body.attachments = a as Record<string, unknown>;
  }
  return { body, error: r.error };
}
