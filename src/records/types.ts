/**
 * The exchange record of `docs/record.md` (shared/docs): one request and its response, or a request that
 * never got one. Field names are public API. `AnyRecord` is what every record callback receives: switch on
 * `protocol` and the request and response parts are typed.
 */

/** Built-in protocols. A protocol plugin's records carry the plugin's own name (which holds a `-`). */
export type Protocol = 'http1' | 'http2' | 'grpc' | 'dubbo';
/**
 * A protocol plugin's name: it must contain a `-` (`acme-kv`), like a custom HTML element, so it can never
 * clash with a built-in name, and `switch (record.protocol)` still narrows to the built-in record types.
 */
export type PluginProtocol = `${string}-${string}`;
export type ExchangeStatus = 'ok' | 'client_error' | 'server_error' | 'timeout' | 'parse_error';

/** Lower-case header name → value, or all values in order when the header was repeated. */
export type HeaderMap = Record<string, string | string[]>;

export interface Peer {
  ip: string;
  port: number;
}

export interface ExchangeRecord<Req = unknown, Res = unknown, P extends string = Protocol | PluginProtocol> {
  protocol: P;
  client: Peer;
  server: Peer;
  connectionId: string;
  streamId?: number;
  requestId?: string;
  startTime: number;
  endTime: number | null;
  duration: number | null;
  status: ExchangeStatus;
  code: number | null;
  endpoint: string;
  error: string | null;
  traceId: string | null;
  spanId: string | null;
  xRequestId: string | null;
  forwardedFor?: string | null;
  requestSize: number;
  responseSize: number;
  request: Req;
  response: Res | null;
  /** Key-values a plugin added (record hooks); absent when none did. */
  attributes?: Record<string, string>;
  /** The exchange came over TLS that flowtap decrypted or terminated (docs/tls.md); absent otherwise. */
  tls?: TlsInfo;
}

/** The TLS that carried an exchange. */
export interface TlsInfo {
  /** `TLS 1.3`, `TLS 1.2`. */
  version: string;
  /** IANA name of the cipher suite, e.g. `TLS_AES_128_GCM_SHA256`. */
  cipher: string | null;
  /** Server name the client asked for (none for an IP address). */
  sni: string | null;
  /** The application protocol agreed (`h2`, `http/1.1`), or null. */
  alpn: string | null;
}

export interface BodyFields {
  bodySize: number;
  body?: string;
  bodyEncoding?: 'base64';
}

// ---- http1 ----

export interface Http1RequestPart extends BodyFields {
  method: string | null;
  target: string | null;
  path: string | null;
  host: string | null;
  version: string | null;
  headers: HeaderMap;
  trailers?: HeaderMap;
}

export interface Http1ResponsePart extends BodyFields {
  statusCode: number;
  reason: string;
  version: string;
  headers: HeaderMap;
  trailers?: HeaderMap;
  /** Status codes of 1xx interim responses that came before this one (100 Continue, 103 Early Hints). */
  interim?: number[];
}

export type Http1Record = ExchangeRecord<Http1RequestPart, Http1ResponsePart, 'http1'>;

// ---- http2 and grpc ----

export interface Http2RequestPart extends BodyFields {
  method: string | null;
  path: string | null;
  authority: string | null;
  scheme: string | null;
  headers: HeaderMap;
  trailers?: HeaderMap;
}

export interface Http2ResponsePart extends BodyFields {
  statusCode: number | null;
  headers: HeaderMap;
  trailers?: HeaderMap;
}

export type Http2Record = ExchangeRecord<Http2RequestPart, Http2ResponsePart, 'http2'> & { hpackIncomplete?: boolean };

export interface GrpcRequestPart {
  path: string | null;
  service: string | null;
  method: string | null;
  authority: string | null;
  metadata: HeaderMap;
  /** Length-prefixed messages the client sent. */
  messages: number;
  /** The first message: decoded with a schema, else a schema-less protobuf dump ({ "1": ..., "2": ... }). */
  message?: unknown;
  /** grpc-timeout, in ms. */
  timeout?: number;
}

export interface GrpcResponsePart {
  httpStatus: number | null;
  grpcStatus: number | null;
  grpcMessage: string | null;
  metadata: HeaderMap;
  trailers: HeaderMap;
  messages: number;
  message?: unknown;
}

export type GrpcRecord = ExchangeRecord<GrpcRequestPart, GrpcResponsePart, 'grpc'> & { hpackIncomplete?: boolean };

// ---- dubbo ----

export interface DubboRequestPart {
  dubboVersion: string | null;
  service: string | null;
  serviceVersion: string | null;
  method: string | null;
  parameterTypes: string | null;
  args?: unknown[];
  attachments: Record<string, unknown>;
  serializationId: number;
  twoWay: boolean;
}

export interface DubboResponsePart {
  status: number;
  statusName: string;
  kind: 'value' | 'null' | 'exception' | 'error';
  value?: unknown;
  exception?: unknown;
  attachments?: Record<string, unknown>;
}

export type DubboRecord = ExchangeRecord<DubboRequestPart, DubboResponsePart, 'dubbo'>;

// ---- protocol plugins ----

/** A protocol plugin's record: its parts are whatever the plugin's `record()` made of its messages. */
export type PluginRecord = ExchangeRecord<Record<string, unknown>, Record<string, unknown>, PluginProtocol>;

/** Every record flowtap emits. */
export type AnyRecord = Http1Record | Http2Record | GrpcRecord | DubboRecord | PluginRecord;
