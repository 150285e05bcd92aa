/** dubbo records from decoded Dubbo frames: a pure function of one exchange. */
import type { DubboMessage } from '../codecs/dubbo/decoder.js';
import { anyCaseLookup, traceContext } from '../trace.js';
import type { RecordContext } from './context.js';
import { DUBBO_STATUS_NAMES, dubboStatusClass, durationOf } from './status.js';
import type { DubboRecord, DubboRequestPart, DubboResponsePart, ExchangeStatus } from './types.js';

export interface DubboExchange {
  req: DubboMessage | null;
  res: DubboMessage | null;
  /** The frame could not be decoded: a parse_error saying this. */
  error: string | null;
  /** Why no response can come: a server_error saying this. */
  failure: string | null;
  start: number;
  /** Time of the failure, for a record with neither message. */
  end?: number | null;
  /** The request was sent by the side that accepted the connection (providers send requests too). */
  reversed: boolean;
}

export function dubboRecord(ctx: RecordContext, x: DubboExchange): DubboRecord {
  const { req, res } = x;
  const rb = req?.request ?? null;
  const sb = res?.response ?? null;
  let status: ExchangeStatus;
  let error: string | null = null;
  if (x.error) { status = 'parse_error'; error = x.error; }
  else if (req?.incomplete) { status = 'parse_error'; error = `request incomplete: ${req.incomplete}`; }
  else if (res?.incomplete) { status = 'parse_error'; error = `response incomplete: ${res.incomplete}`; }
  else if (req?.bodyError) { status = 'parse_error'; error = `request body: ${req.bodyError}`; }
  else if (res?.bodyError) { status = 'parse_error'; error = `response body: ${res.bodyError}`; }
  else if (res) {
    status = dubboStatusClass(res.status, sb?.kind === 'exception');
    error = sb && (sb.kind === 'exception' || sb.kind === 'error') ? sb.errorMessage : null;
  } else if (x.failure) { status = 'server_error'; error = x.failure; }
  else status = req && !req.twoWay ? 'ok' : 'timeout';
  const attachments = rb?.attachments ?? {};
  const trace = traceContext(anyCaseLookup(attachments), ctx.options);
  const [client, server] = x.reversed ? [ctx.server, ctx.client] : [ctx.client, ctx.server];
  const request: DubboRequestPart = {
    dubboVersion: rb?.dubboVersion ?? null,
    service: rb?.service ?? null,
    serviceVersion: rb?.serviceVersion ?? null,
    method: rb?.method ?? null,
    parameterTypes: rb?.parameterTypes ?? null,
    attachments,
    serializationId: (req ?? res)?.serializationId ?? 0,
    twoWay: req?.twoWay ?? true,
  };
  if (req?.values?.args) request.args = req.values.args;
  let response: DubboResponsePart | null = null;
  if (res) {
    response = {
      status: res.status,
      statusName: DUBBO_STATUS_NAMES[res.status] ?? 'UNKNOWN',
      kind: sb?.kind ?? (res.status === 20 ? 'value' : 'error'),
    };
    if (res.values && 'value' in res.values) response.value = res.values.value;
    if (res.values?.exception !== undefined) response.exception = res.values.exception;
    if (sb?.attachments) response.attachments = sb.attachments;
  }
  const startTime = req?.startTime ?? res?.startTime ?? x.start;
  const endTime = res?.endTime ?? x.end ?? null;
  return {
    protocol: 'dubbo',
    client, server,
    connectionId: ctx.connectionId,
    requestId: (req ?? res)?.requestId,
    startTime,
    endTime,
    duration: durationOf(startTime, endTime),
    status,
    code: res?.status ?? null,
    // Only when the method is known: a body cut before it must not name a different endpoint.
    endpoint: rb && rb.method !== null ? `${rb.service ?? ''}/${rb.method}` : '',
    error,
    traceId: trace.traceId,
    spanId: trace.spanId,
    xRequestId: trace.xRequestId,
    requestSize: req?.size ?? 0,
    responseSize: res?.size ?? 0,
    request,
    response,
  };
}
