/**
 * flowtap: see and steer the traffic between services.
 * The root entry holds decoders, pairing, capture input, the tap proxy and pipeline stages. It loads no sink
 * (flowtap/sinks) and no koffi or BPF (flowtap/bpf).
 */
export type { Decoder, DecodeError, DecoderCallbacks } from './codecs/decoder.js';
export { Http1Decoder, http1Decoder } from './codecs/http1/decoder.js';
export type { HeaderMap, Http1DecoderOptions, Http1Message } from './codecs/http1/decoder.js';

export { DubboDecoder, dubboDecoder } from './codecs/dubbo/decoder.js';
export type { DubboDecoderOptions, DubboMessage } from './codecs/dubbo/decoder.js';
export { countParameters, readRequestBody, readResponseBody, ResponseFlag } from './codecs/dubbo/body.js';
export type { DubboRequestBody, DubboResponseBody } from './codecs/dubbo/body.js';
export { encodeHeartbeat, encodeRequest, encodeResponse, javaException } from './codecs/dubbo/encoder.js';
export type { DubboRequestSpec, DubboResponseSpec, RequestId } from './codecs/dubbo/encoder.js';
export { Hessian2Reader } from './codecs/dubbo/hessian2.js';
export type { HessianObject } from './codecs/dubbo/hessian2.js';
export { decodeValues as decodeDubboValues } from './codecs/dubbo/values.js';
export type { DubboValues } from './codecs/dubbo/values.js';
export { HpackDecoder } from './codecs/http2/hpack.js';
export type { HeaderField, HpackBlock, HpackDecoderOptions, HpackFailure } from './codecs/http2/hpack.js';
export { FrameType, Http2FrameDecoder, PREFACE } from './codecs/http2/frames.js';
export type { Http2FrameCallbacks, Http2FrameDecoderOptions } from './codecs/http2/frames.js';
export { Http2Session } from './pipeline/http2-session.js';
export { ProtoRegistry } from './codecs/grpc/schemas.js';
export { protobufDump } from './codecs/grpc/protobuf-dump.js';
export type { GrpcRecord, GrpcRequestPart, GrpcResponsePart, Http2Record, Http2RequestPart, Http2ResponsePart } from './pipeline/http2-session.js';
export { DUBBO_STATUS_NAMES, DubboSession } from './pipeline/dubbo-session.js';
export type { DubboRecord, DubboRequestPart, DubboResponsePart } from './pipeline/dubbo-session.js';

export {
  bodyFields, dubboStatusClass, grpcStatusClass, httpStatusClass,
} from './record.js';
export type {
  BodyFields, ExchangeRecord, ExchangeStatus, Http1Record, Http1RequestPart, Http1ResponsePart, Peer, Protocol,
} from './record.js';
export { anyCaseLookup, lowerCaseLookup, traceContext } from './trace.js';
export type { FieldLookup, TraceContext, TraceOptions } from './trace.js';

export { Conversation } from './pipeline/conversation.js';
export type { ConversationOptions } from './pipeline/conversation.js';
export { protocols } from './pipeline/protocols.js';
export type { ProtocolModule, ProtocolSession, SessionContext, SessionOptions, Side } from './pipeline/session.js';

export { TapProxy } from './pipeline/tap-proxy.js';
export type { ConnectionInfo, TapProxyEvents, TapProxyOptions, TapProxyStats, Upstream } from './pipeline/tap-proxy.js';
export { filter, map, mask, pipeline, rateLimit, sample, tee } from './pipeline/stages.js';
export type { MaskOptions, Next, Stage } from './pipeline/stages.js';
export type { RecordSink } from './sinks/batching.js'; // the interface tee() takes; sinks live in flowtap/sinks

export { CaptureDecoder, readCaptureFile } from './capture/read.js';
export type { CaptureOptions, CaptureSummary } from './capture/read.js';
export { CaptureFileReader } from './capture/pcap.js';
export type { CapturedPacket } from './capture/pcap.js';
export { LinkType, tcpSegment } from './capture/packet.js';
export type { TcpSegment } from './capture/packet.js';
