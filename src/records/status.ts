/** Outcome classes of `docs/record.md`'s status rules, one function per protocol. */
import type { ExchangeStatus } from './types.js';

/** HTTP: < 400 ok, 4xx client_error, 5xx server_error. */
export function httpStatusClass(code: number): ExchangeStatus {
  if (code >= 500) return 'server_error';
  if (code >= 400) return 'client_error';
  return 'ok';
}

const GRPC_CLIENT_ERRORS = new Set([1, 3, 5, 6, 7, 9, 11, 16]);
/** gRPC: 0 ok; 1, 3, 5, 6, 7, 9, 11, 16 client_error; any other server_error. */
export function grpcStatusClass(code: number): ExchangeStatus {
  if (code === 0) return 'ok';
  return GRPC_CLIENT_ERRORS.has(code) ? 'client_error' : 'server_error';
}

/**
 * The grpc-status a client derives from a non-200 HTTP status when no grpc-status was sent (gRPC's
 * "HTTP to gRPC status code mapping"): 400→INTERNAL, 401→UNAUTHENTICATED, 403→PERMISSION_DENIED,
 * 404→UNIMPLEMENTED, 429/502/503/504→UNAVAILABLE, anything else→UNKNOWN.
 */
export function grpcStatusFromHttp(httpStatus: number): number {
  switch (httpStatus) {
    case 400: return 13;
    case 401: return 16;
    case 403: return 7;
    case 404: return 12;
    case 429: case 502: case 503: case 504: return 14;
    default: return 2;
  }
}

/** Dubbo status byte: 20 ok (unless it carries an exception); 30, 35, 40, 90 client_error; others server_error. */
export function dubboStatusClass(status: number, exception = false): ExchangeStatus {
  if (status === 20) return exception ? 'server_error' : 'ok';
  if (status === 30 || status === 35 || status === 40 || status === 90) return 'client_error';
  return 'server_error';
}

/** Dubbo's response status bytes (org.apache.dubbo.remoting.exchange.Response). */
export const DUBBO_STATUS_NAMES: Record<number, string> = {
  20: 'OK', 25: 'SERIALIZATION_ERROR', 30: 'CLIENT_TIMEOUT', 31: 'SERVER_TIMEOUT', 35: 'CHANNEL_INACTIVE',
  40: 'BAD_REQUEST', 50: 'BAD_RESPONSE', 60: 'SERVICE_NOT_FOUND', 70: 'SERVICE_ERROR', 80: 'SERVER_ERROR',
  90: 'CLIENT_ERROR', 100: 'SERVER_THREADPOOL_EXHAUSTED_ERROR',
};

/** ms with µs precision: float noise in a difference of two times is not information. */
export function durationOf(start: number, end: number | null): number | null {
  return end === null ? null : Math.round((end - start) * 1000) / 1000;
}
