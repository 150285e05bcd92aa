/**
 * flowtap/codecs: the wire-level building blocks under the decoders, for people who write their own
 * decoders or tools. The root entry (`flowtap`) is what applications need; these may change faster.
 */
export { countParameters, readRequestBody, readResponseBody, ResponseFlag } from './dubbo/body.js';
export type { DubboRequestBody, DubboResponseBody } from './dubbo/body.js';
export { Hessian2Reader } from './dubbo/hessian2.js';
export type { HessianObject } from './dubbo/hessian2.js';
export { decodeValues as decodeDubboValues } from './dubbo/values.js';
export type { DubboValues } from './dubbo/values.js';
export { HpackDecoder } from './http2/hpack.js';
export type { HeaderField, HpackBlock, HpackDecoderOptions, HpackFailure } from './http2/hpack.js';
export { FrameType, Http2FrameDecoder, PREFACE } from './http2/frames.js';
export type { Http2FrameCallbacks, Http2FrameDecoderOptions } from './http2/frames.js';
export { GrpcMessageReader } from './grpc/messages.js';
export { protobufDump } from './grpc/protobuf-dump.js';
export { CaptureFileReader } from '../capture/pcap.js';
export type { CapturedPacket } from '../capture/pcap.js';
export { LinkType, tcpSegment } from '../capture/packet.js';
export type { TcpSegment } from '../capture/packet.js';
export { anyCaseLookup, lowerCaseLookup, traceContext } from '../trace.js';
export type { FieldLookup, TraceContext } from '../trace.js';
