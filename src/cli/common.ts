/** What the CLI's commands share: usage errors, flag parsing, addresses, sinks and plugins. */
import { closeSync, openSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { PluginHost, PluginStats } from '../plugins/host.js';
import type { SinkSpec } from '../sinks/spec.js';

/** A wrong flag or value: one line, then the command's usage, exit 2. */
export class UsageError extends Error {}

export function parseFlags<T extends ParseArgsConfig>(config: T) {
  try {
    return parseArgs(config);
  } catch (e) {
    // parseArgs adds a hint about positionals that does not help with a mistyped flag: keep its first sentence.
    throw new UsageError((e as Error).message.split('\n')[0].replace(/\. To specify a positional.*$/, ''));
  }
}

export function usageFailure(e: unknown, usage: string): number {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`flowtap: ${msg}\n\n${usage}\n`);
  return 2;
}

/**
 * Load the plugins named on the command line, run `body` with their host (null when none), then report
 * what the plugins did wrong. A plugin that cannot be loaded is one line and exit 2.
 */
export async function withPlugins(files: string[] | undefined, workers: string[] | undefined,
  body: (host: PluginHost | null) => Promise<number>, usage: string): Promise<number> {
  let host: PluginHost | null = null;
  if (files?.length || workers?.length) {
    const { loadPlugins } = await import('../plugins/load.js');
    try {
      host = await loadPlugins([...(files ?? []), ...(workers ?? []).map((path) => ({ path, isolate: 'worker' as const }))]);
    } catch (e) {
      process.stderr.write(`flowtap: ${(e as Error).message}\n`);
      return 2;
    }
    let last = 0;
    const say = (line: string) => { if (Date.now() - last > 1000) { last = Date.now(); process.stderr.write(`flowtap: plugin ${line}\n`); } };
    host.on('error', (name, e) => say(`${name} threw: ${e.message} (the record went on unchanged)`));
    host.on('timeout', (name, ms) => say(`${name} made no progress for ${Math.round(ms)} ms: its worker was replaced`));
    host.on('disabled', (name, why) => process.stderr.write(`flowtap: plugin ${name} switched off: ${why}\n`));
  }
  try {
    return await body(host);
  } catch (e) {
    if (e instanceof UsageError) return usageFailure(e, usage);
    throw e;
  } finally {
    if (host) {
      await host.close();
      printPluginStats(host.stats);
    }
  }
}

/** One line per plugin that failed, timed out, ran over budget or skipped records; nothing for the others. */
export function printPluginStats(stats: readonly PluginStats[]): void {
  for (const s of stats) {
    if (s.failures || s.timeouts || s.overBudget || s.skipped) {
      process.stderr.write(`flowtap: plugin ${s.name}: ${s.calls} calls, ${s.failures} failures, ${s.timeouts} timeouts, `
        + `${s.overBudget} over budget, ${s.skipped} skipped${s.disabled ? `, switched off (${s.disabled})` : ''}\n`);
    }
  }
}

export function hostPort(flag: string, s: string, defaultHost: string | null): { host: string | undefined; port: number } {
  const m = /^(?:\[?([^\]]+?)\]?:)?(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535 || (!m[1] && !defaultHost)) {
    throw new UsageError(`${flag} takes ${defaultHost ? '[HOST:]PORT' : 'HOST:PORT'}, not "${s}"`);
  }
  return { host: m[1] ?? defaultHost ?? undefined, port };
}

export interface OutSpec { kind: 'jsonl' | 'es' | 'splunk' | 'clickhouse'; target: string }

/** An --out SPEC (jsonl:PATH, es:URL, splunk:URL, clickhouse:URL), checked. */
export function outSpec(spec: string): OutSpec {
  const m = /^([a-z]+):(.+)$/.exec(spec);
  if (!m) throw new UsageError(`--out takes KIND:TARGET, e.g. jsonl:records.jsonl, not "${spec}"`);
  const [, kind, target] = m;
  if (kind === 'jsonl') return { kind, target };
  if (kind !== 'es' && kind !== 'splunk' && kind !== 'clickhouse') throw new UsageError(`--out: unknown sink "${kind}" (known: jsonl, es, splunk, clickhouse)`);
  let url: URL;
  try { url = new URL(target); } catch { throw new UsageError(`--out ${kind}: "${target}" is not a URL`); }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--out ${kind}: the URL must be http or https`);
  if (kind === 'splunk' && !decodeURIComponent(url.password) && !process.env.FLOWTAP_SPLUNK_TOKEN) {
    throw new UsageError('--out splunk: no HEC token (put it in the URL as http://:TOKEN@host:8088 or set FLOWTAP_SPLUNK_TOKEN)');
  }
  return { kind, target };
}

/**
 * The first JSONL output that cannot be opened for appending, said as an error; null when all can. Checked
 * before any traffic: a wrong path is an error at once, not a sink that fails and retries until the end.
 */
export function unwritableOutput(outs: OutSpec[], flag = '--out'): string | null {
  for (const o of outs) {
    if (o.kind !== 'jsonl' || o.target === '-') continue;
    try {
      closeSync(openSync(o.target, 'a'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'its directory does not exist' : code === 'EISDIR' ? 'it is a directory'
        : code === 'EACCES' ? 'permission denied' : (e as Error).message;
      return `${flag} jsonl:${o.target}: cannot open it for writing: ${why}`;
    }
  }
  return null;
}

/** What an --out spec opens, as plain data (a decoding thread can open it too). */
export function sinkSpec(out: OutSpec): SinkSpec {
  if (out.kind === 'jsonl') return { kind: 'jsonl', options: { path: out.target } };
  if (out.kind === 'es') return { kind: 'es', options: { url: out.target } };
  const u = new URL(out.target);
  if (out.kind === 'splunk') {
    const token = decodeURIComponent(u.password) || process.env.FLOWTAP_SPLUNK_TOKEN!;
    u.username = '';
    u.password = '';
    return { kind: 'splunk', options: { url: u.toString(), token } };
  }
  const table = u.searchParams.get('table') ?? undefined;
  const database = u.searchParams.get('database') ?? undefined;
  const createTable = u.searchParams.get('create') === '1';
  u.search = '';
  return { kind: 'clickhouse', options: { url: u.toString(), table, database, createTable } };
}

/** A sink for an --out spec, loaded only when asked for. */
export async function makeSink(out: OutSpec) {
  const { openSink } = await import('../sinks/spec.js');
  const sink = openSink(sinkSpec(out));
  sink.on('error', sinkErrorPrinter(out));
  return sink;
}

/** One line per burst of a sink's failures, not per retry: the status line carries the counts. */
export function sinkErrorPrinter(out: OutSpec): (e: Error) => void {
  let last = 0;
  return (e) => {
    if (Date.now() - last > 5000) { last = Date.now(); process.stderr.write(`\nflowtap: ${out.kind} sink: ${e.message}\n`); }
  };
}

export function wholeNumber(flag: string, s: string): number {
  if (!/^\d+$/.test(s)) throw new UsageError(`${flag} takes a whole number, not "${s}"`);
  return Number(s);
}


/** Resolves at SIGINT or SIGTERM, or after `ms` when given; leaves no signal listener behind. */
export function untilStopped(ms?: number): Promise<void> {
  return new Promise((resolve) => {
    const t = ms === undefined ? null : setTimeout(() => stop(), ms);
    function stop(): void {
      if (t) clearTimeout(t);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    }
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
