/**
 * flowtap: see and steer the traffic between services.
 * The root entry holds what an application uses: the streaming decoders, records and their types,
 * conversations and capture reading, the tap proxy, pipeline stages and plugins. Wire-level building blocks
 * (HPACK, HTTP/2 frames, the Hessian reader, pcap parsing) are in `flowtap/codecs`. The root loads no sink
 * (`flowtap/sinks`) and no koffi or BPF (`flowtap/bpf`).
 */

// Decoders: bytes of one direction in, whole messages out (the contract in codecs/decoder.ts).
export type { Decoder, DecodeError, DecoderCallbacks } from './codecs/decoder.js';
export { Http1Decoder, http1Decoder } from './codecs/http1/decoder.js';
export type { Http1DecoderOptions, Http1Message } from './codecs/http1/decoder.js';
export { Http2Decoder } from './codecs/http2/decoder.js';
export type { Http2DecoderOptions, Http2Message } from './codecs/http2/decoder.js';
export { DubboDecoder, dubboDecoder } from './codecs/dubbo/decoder.js';
export type { DubboDecoderOptions, DubboMessage } from './codecs/dubbo/decoder.js';
export { encodeHeartbeat, encodeRequest, encodeResponse, javaException } from './codecs/dubbo/encoder.js';
export type { DubboRequestSpec, DubboResponseSpec, RequestId } from './codecs/dubbo/encoder.js';
export { ProtoRegistry } from './codecs/grpc/schemas.js';

// Records (docs/record.md).
export type {
  AnyRecord, BodyFields, DubboRecord, DubboRequestPart, DubboResponsePart, ExchangeRecord, ExchangeStatus, GrpcRecord,
  GrpcRequestPart, GrpcResponsePart, HeaderMap, Http1Record, Http1RequestPart, Http1ResponsePart, Http2Record,
  Http2RequestPart, Http2ResponsePart, Peer, PluginProtocol, PluginRecord, Protocol, TlsInfo,
} from './records/types.js';
export { bodyBytes, bodyFields } from './records/body.js';
export { wireOf } from './records/wire.js';
export type { Http2Half, Wire } from './records/wire.js';
export {
  DUBBO_STATUS_NAMES, dubboStatusClass, grpcStatusClass, grpcStatusFromHttp, httpStatusClass,
} from './records/status.js';
export type { TraceOptions } from './trace.js';

// Connections: detection, sessions, pairing, the error boundary.
export { Conversation } from './pipeline/conversation.js';
export type { ConversationOptions } from './pipeline/conversation.js';
export { protocols } from './pipeline/protocols.js';
export type { ProtocolModule, ProtocolSession, SessionContext, SessionOptions, Side, UpgradeRequest } from './pipeline/session.js';
export { RecordCallbackError } from './pipeline/deliver.js';
export type { UserErrorHandler } from './pipeline/deliver.js';

// Capture files.
export { CaptureDecoder, readCaptureFile } from './capture/read.js';
export { ParallelCaptureReader, type ParallelReadOptions } from './capture/parallel.js';
export { KeyLog } from './capture/tls/keylog.js';
export { tlsProtocol } from './capture/tls/session.js';
export type { TlsStats } from './capture/tls/session.js';
export type { CaptureOptions, CaptureSummary } from './capture/read.js';

// The tap proxy and pipeline stages.
export { TapProxy } from './pipeline/tap-proxy.js';
export type { ConnectionInfo, TapProxyEvents, TapProxyOptions, TapProxyStats, Upstream } from './pipeline/tap-proxy.js';
export { TapCluster } from './pipeline/tap-cluster.js';
export type { ClusterProxyOptions, TapClusterEvents, TapClusterOptions, TapClusterStats } from './pipeline/tap-cluster.js';
export { filter, map, mask, pipeline, rateLimit, sample, tee } from './pipeline/stages.js';
export type { MaskOptions, Next, Stage } from './pipeline/stages.js';
export type { RecordSink } from './sinks/batching.js';

// Plugins (docs/plugins.md).
export {
  definePlugin, loadPlugins, PluginHost, protocolModule,
} from './plugins/index.js';
export type {
  FlowtapPlugin, HookResult, PluginExchangeFields, PluginFile, PluginHostEvents, PluginHostOptions, PluginMessage, PluginStats,
  ProtocolPlugin, RecordHook, RecordHooks, RecordOverride,
} from './plugins/index.js'; // the interface tee() takes; sinks live in flowtap/sinks
