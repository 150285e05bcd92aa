/** The plugin API (docs/plugins.md): record hooks that see whole exchanges, and protocol plugins. */
import type { Decoder, DecoderCallbacks } from '../codecs/decoder.js';
import type {
  AnyRecord, DubboRecord, ExchangeStatus, GrpcRecord, Http1Record, Http2Record, PluginProtocol, PluginRecord,
} from '../records/types.js';

/** What a record hook may change. Fields left out stay as decoded. */
export interface RecordOverride {
  status?: ExchangeStatus;
  code?: number | null;
  error?: string | null;
  endpoint?: string;
  traceId?: string | null;
  spanId?: string | null;
  xRequestId?: string | null;
  /** Merged into the record's `attributes` (string values only). */
  attributes?: Record<string, string>;
  /** Replace the captured request / response body text (masking); `bodySize` stays the size on the wire. */
  requestBody?: string;
  responseBody?: string;
}

/** A hook's answer: changes, `'drop'` to drop the record, or nothing to leave it as it is. */
export type HookResult = RecordOverride | 'drop' | null | undefined | void;

/** A hook sees the whole record (headers, captured body or decoded message, attachments): read it, never change it. */
export type RecordHook<R> = (record: Readonly<R>) => HookResult;

export interface RecordHooks {
  http1?: RecordHook<Http1Record>;
  http2?: RecordHook<Http2Record>;
  grpc?: RecordHook<GrpcRecord>;
  dubbo?: RecordHook<DubboRecord>;
  /** Every record, after its protocol's hook (protocol plugins' records included). */
  any?: RecordHook<AnyRecord>;
}

/** A message of a protocol plugin's decoder: whatever it needs, plus where it sits on the wire. */
export interface PluginMessage {
  /** Bytes of the message on the wire. */
  size: number;
  startTime: number;
  endTime: number;
}

/** What a protocol plugin makes of one exchange; flowtap fills in the connection, times and sizes. */
export interface PluginExchangeFields {
  request: Record<string, unknown>;
  response: Record<string, unknown> | null;
  endpoint?: string;
  status?: ExchangeStatus;
  code?: number | null;
  error?: string | null;
  traceId?: string | null;
  spanId?: string | null;
  attributes?: Record<string, string>;
}

/** A user-written protocol: detected from the first bytes, decoded by its own decoder, paired as it says. */
export interface ProtocolPlugin<M extends PluginMessage = PluginMessage> {
  /** Contains a `-` (`acme-kv`), so it never clashes with a built-in protocol. */
  name: PluginProtocol;
  /** As ProtocolModule.classify: 'request' | 'response' for bytes that open such a message, null if they cannot, undefined for "more bytes". */
  classify(first: Uint8Array): 'request' | 'response' | null | undefined;
  /** A decoder for one direction, following flowtap's decoder contract (src/codecs/decoder.ts). */
  decoder(side: 'client' | 'server', callbacks: DecoderCallbacks<M>): Decoder;
  /** How messages pair: `'order'` (answers in request order) or a key (an id the request and answer share). */
  pairing: 'order' | { key: (message: M) => string };
  /** The record fields of one exchange (`req` null: an answer whose request was not seen; `res` null: no answer). */
  record(req: M | null, res: M | null): PluginExchangeFields;
}

export interface FlowtapPlugin {
  name: string;
  hooks?: RecordHooks;
  protocols?: ProtocolPlugin<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Identity, for types: `export default definePlugin({ ... })`. */
export function definePlugin(plugin: FlowtapPlugin): FlowtapPlugin {
  return plugin;
}

export type { PluginRecord };
