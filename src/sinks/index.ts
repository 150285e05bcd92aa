/**
 * `flowtap/sinks` — where records go. A subpath of its own, so importing flowtap's decoders loads no sink.
 */
export { BatchingSink } from './batching.js';
export type { BatchingOptions, PartialOutcome, RecordSink, SinkEvents, SinkStats } from './batching.js';
export { JsonlSink } from './jsonl.js';
export type { JsonlSinkOptions } from './jsonl.js';
export { ElasticsearchSink } from './elasticsearch.js';
export type { ElasticsearchSinkOptions } from './elasticsearch.js';
export { SplunkSink } from './splunk.js';
export type { SplunkSinkOptions } from './splunk.js';
export { ClickHouseSink, clickHouseSchema } from './clickhouse.js';
export type { ClickHouseSinkOptions } from './clickhouse.js';
export { openSink } from './spec.js';
export type { SinkSpec } from './spec.js';
