/**
 * What an HTTP/1 message the capture did not hold whole still tells: the head as far as it is known to be
 * whole, and what of the body is missing. Reassembly must never report less than one packet showed.
 */
import type { HeaderMap } from '../../records/types.js';
import type { PartialHead } from './llhttp-adapter.js';
import type { Http1Message } from './decoder.js';

/**
 * Body bytes the head announces: a Content-Length, Infinity for a response that runs to the close, -1
 * when the framing itself is on the wire (chunked), so a hole in it cannot be counted past.
 */
export function announcedBody(h: HeaderMap, response: boolean, bodyless: boolean): number {
  if (bodyless) return 0;
  if (h['transfer-encoding'] !== undefined) return -1;
  const cl = h['content-length'];
  if (cl !== undefined) return Number(Array.isArray(cl) ? cl[0] : cl) || 0;
  return response ? Infinity : 0;
}

/** A message from a head that never completed (its `headers` only the pairs known whole). */
export function messageFromPartial(type: 'request' | 'response', p: PartialHead, headers: HeaderMap,
  startTime: number, size: number): Http1Message {
  const request = type === 'request';
  return {
    type,
    version: p.versionMajor > 0 ? `${p.versionMajor}.${p.versionMinor}` : '',
    method: request ? p.method : undefined,
    target: request ? p.url : undefined,
    statusCode: request ? undefined : p.statusCode,
    reason: request ? undefined : p.statusMessage,
    headers, trailers: null, bodySize: 0, body: null, size,
    startTime, endTime: 0, upgrade: false, interim: !request && p.statusCode < 200,
    incomplete: 'head',
  };
}

/** The sentence for a message cut short: where it stopped and what was seen of it. */
export function cutReason(m: Http1Message | null, how: string, announced: number): string {
  if (!m) return `${how} inside the head`;
  const of = announced >= 0 && Number.isFinite(announced) ? ` of ${announced}` : '';
  return `${how} after ${m.bodySize}${of} body bytes`;
}
