/**
 * `flowtap/sinks` — where records go. A subpath of its own, so importing flowtap's decoders loads no sink.
 */
export { BatchingSink } from './batching.js';
export type { BatchingOptions, RecordSink, SinkEvents, SinkStats } from './batching.js';
export { JsonlSink } from './jsonl.js';
export type { JsonlSinkOptions } from './jsonl.js';
