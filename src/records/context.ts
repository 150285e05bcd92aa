import type { TraceOptions } from '../trace.js';
import type { Peer } from './types.js';

/** What a record builder knows of the connection besides the messages themselves. */
export interface RecordContext {
  client: Peer;
  server: Peer;
  connectionId: string;
  options: TraceOptions;
}
