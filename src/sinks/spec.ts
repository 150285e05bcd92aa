/**
 * Sinks described as plain data. A sink cannot cross threads, but its description can: a tap proxy's
 * decoding thread opens its own sinks from these, so records are written where they are made and never
 * travel back to the forwarding thread.
 */
import type { BatchingSink } from './batching.js';
import { ClickHouseSink, type ClickHouseSinkOptions } from './clickhouse.js';
import { ElasticsearchSink, type ElasticsearchSinkOptions } from './elasticsearch.js';
import { JsonlSink, type JsonlSinkOptions } from './jsonl.js';
import { SplunkSink, type SplunkSinkOptions } from './splunk.js';

export type SinkSpec =
  | { kind: 'jsonl'; options: JsonlSinkOptions }
  | { kind: 'es'; options: ElasticsearchSinkOptions }
  | { kind: 'splunk'; options: SplunkSinkOptions }
  | { kind: 'clickhouse'; options: ClickHouseSinkOptions };

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JsonlSink also queues lines
export function openSink(spec: SinkSpec): BatchingSink<any> {
  switch (spec.kind) {
    case 'jsonl': return new JsonlSink(spec.options);
    case 'es': return new ElasticsearchSink(spec.options);
    case 'splunk': return new SplunkSink(spec.options);
    case 'clickhouse': return new ClickHouseSink(spec.options);
    default: throw new Error(`unknown sink kind "${(spec as { kind: unknown }).kind}" (known: jsonl, es, splunk, clickhouse)`);
  }
}
