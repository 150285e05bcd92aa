import type { ExchangeRecord } from '../records/types.js';

/** The readable table of `flowtap read --format table`: one line per exchange, fixed columns. */
export const TABLE_HEADER = [
  pad('TIME', 24), pad('PROTO', 6), pad('CLIENT', 22), pad('SERVER', 22), pad('STATUS', 12), pad('CODE', 5),
  pad('MS', 9, true), pad('REQ', 8, true), pad('RESP', 8, true), ' ENDPOINT',
].join(' ');

export function formatTableRow(r: ExchangeRecord): string {
  const req = r.request as { method?: string | null } | null;
  // HTTP endpoints read better with their method; a Dubbo endpoint already names it.
  const what = req && typeof req.method === 'string' && r.protocol.startsWith('http') ? `${req.method} ${r.endpoint}` : r.endpoint;
  return [
    pad(new Date(r.startTime).toISOString(), 24),
    pad(r.protocol, 6),
    pad(`${r.client.ip}:${r.client.port}`, 22),
    pad(`${r.server.ip}:${r.server.port}`, 22),
    pad(r.status, 12),
    pad(r.code === null ? '-' : String(r.code), 5),
    pad(r.duration === null ? '-' : r.duration.toFixed(1), 9, true),
    pad(String(r.requestSize), 8, true),
    pad(String(r.responseSize), 8, true),
    ' ' + what + (r.error ? `  (${r.error})` : ''),
  ].join(' ');
}

function pad(s: string, n: number, right = false): string {
  if (s.length >= n) return s;
  return right ? s.padStart(n) : s.padEnd(n);
}
