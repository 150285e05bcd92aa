/** `flowtap diff`: does the new version answer like the old one? (docs/diff.md) */
import { writeFileSync } from 'node:fs';
import type { DiffOptions, DiffReport } from '../diff/engine.js';
import { ignoreRule } from '../diff/compare.js';
import { hostPort, parseFlags, untilStopped, UsageError, wholeNumber } from './common.js';
import { parseWait } from './select-flags.js';

export const DIFF_USAGE = `usage: flowtap diff FILE... --primary URL --secondary URL --candidate URL [options]   (three-way, from a recording)
       flowtap diff --listen [HOST:]PORT --primary URL --secondary URL --candidate URL [options]   (three-way, live)
       flowtap diff FILE... [options]   (two-way: recorded answers, type 2, against replayed ones, type 3)

Sends each request to a primary (the old version), a secondary (a second instance of the old) and a
candidate (the new), compares the answers field by field (status, headers, JSON/form/protobuf/Dubbo bodies
by structure), and reports only the fields that differ between primary and candidate clearly more often
than between primary and secondary: the rest is noise. Live, clients get the primary's answer, byte for byte.

sides:
  --primary URL          the old version (http://HOST:PORT); live, the proxy's upstream
  --secondary URL        a second instance of the old version: what differs from it is noise
  --candidate URL        the new version
  --listen [HOST:]PORT   live: a tap proxy here, in front of the primary
  --duration SECONDS     live: stop and report after this long (default: at SIGINT/SIGTERM)
  --allow-side-effects   also send POST, PUT, PATCH, DELETE, gRPC and Dubbo calls (to all three sides)
  --workers N            connections per side (recording mode; default 8)
  --timeout DURATION     a side that does not answer within this is "no answer" (default 10s)
comparing:
  --ignore RULE          never compare a field: header:NAME or json:$.path.to.field ([*] for array elements); repeatable
  --unordered-arrays     arrays with the same elements in another order are equal
  --endpoint TEMPLATE    group requests by this path template (/orders/{id}/items); repeatable
                         (default: numeric, uuid-like and long hex segments become {id})
  --relative PERCENT     report a field when its raw differences exceed its noise by this much (default 20%)
  --absolute PERCENT     ... and by at least this share of the endpoint's requests (default 0.03%)
  --proto-dir DIR        decode gRPC messages with the .proto files under DIR
report:
  --report-json FILE     the whole report as JSON
  --report-html FILE     a self-contained HTML report (no network needed to view it)
  --examples N           example requests kept per endpoint (default 3)
  --fail-on-diff         exit 1 when any real difference was found (for CI pipelines)
  -h, --help             show this help

exit status: 0 done (or no real difference with --fail-on-diff), 1 real differences with --fail-on-diff,
2 bad arguments, unreadable files, or a report that cannot be written`;

export function diff(args: string[]): Promise<number> | number {
  const { values: v, positionals } = parseFlags({
    args, allowPositionals: true, strict: true,
    options: {
      primary: { type: 'string' }, secondary: { type: 'string' }, candidate: { type: 'string' }, listen: { type: 'string' },
      duration: { type: 'string' }, 'allow-side-effects': { type: 'boolean' }, workers: { type: 'string' }, timeout: { type: 'string' },
      ignore: { type: 'string', multiple: true }, 'unordered-arrays': { type: 'boolean' }, endpoint: { type: 'string', multiple: true },
      relative: { type: 'string' }, absolute: { type: 'string' }, 'proto-dir': { type: 'string' },
      'report-json': { type: 'string' }, 'report-html': { type: 'string' }, examples: { type: 'string' }, 'fail-on-diff': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) { process.stdout.write(DIFF_USAGE + '\n'); return 0; }
  const sides = [v.primary, v.secondary, v.candidate];
  const threeWay = sides.some((s) => s !== undefined);
  if (threeWay && sides.some((s) => s === undefined)) throw new UsageError('a three-way diff needs --primary, --secondary and --candidate');
  for (const s of sides) if (s !== undefined && !/^http:\/\/[^/]+/.test(s)) throw new UsageError(`a side is http://HOST:PORT, not "${s}"`);
  if (v.listen !== undefined && !threeWay) throw new UsageError('--listen needs --primary, --secondary and --candidate');
  if (v.listen === undefined && positionals.length === 0) throw new UsageError('diff needs a recording (FILE...) or --listen PORT');
  if (v.listen !== undefined && positionals.length > 0) throw new UsageError('live (--listen) or from a recording (FILE...), not both');
  const percent = (flag: string, s: string | undefined, dflt: number) => {
    if (s === undefined) return dflt;
    const m = /^(\d+(?:\.\d+)?)%?$/.exec(s);
    if (!m) throw new UsageError(`${flag} takes a percentage like 20% or 0.03%, not "${s}"`);
    return Number(m[1]) / 100;
  };
  let ignore: string[];
  try { ignore = (v.ignore ?? []).map(ignoreRule); } catch (e) { throw new UsageError((e as Error).message); }
  const opts: DiffOptions = {
    ignore, unorderedArrays: v['unordered-arrays'] ?? false, templates: v.endpoint ?? [],
    relative: percent('--relative', v.relative, 0.2), absolute: percent('--absolute', v.absolute, 0.0003),
    examples: v.examples === undefined ? 3 : wholeNumber('--examples', v.examples),
  };
  const timeout = v.timeout === undefined ? 10_000 : parseWait('--timeout', v.timeout);
  const workers = v.workers === undefined ? 8 : wholeNumber('--workers', v.workers);
  const duration = v.duration === undefined ? undefined : wholeNumber('--duration', v.duration) * 1000;
  const listen = v.listen === undefined ? undefined : hostPort('--listen', v.listen, '127.0.0.1');
  return (async () => {
    // The reports are written at the end: a path that cannot take them is said now, not after the run.
    const { unwritablePath } = await import('../replay/files.js');
    for (const flag of ['report-json', 'report-html'] as const) {
      const bad = v[flag] === undefined ? null : unwritablePath(v[flag]!);
      if (bad) { process.stderr.write(`flowtap: --${flag} ${v[flag]}: ${bad}\n`); return 2; }
    }
    let protos;
    if (v['proto-dir'] !== undefined) {
      const { ProtoRegistry } = await import('../codecs/grpc/schemas.js');
      try { protos = ProtoRegistry.load(v['proto-dir']); } catch (e) { process.stderr.write(`flowtap: ${(e as Error).message}\n`); return 2; }
    }
    let report: DiffReport;
    const { RecordingError } = await import('../replay/files.js');
    try {
      if (listen) {
        const { ThreeWay } = await import('../diff/run.js');
        const tw = new ThreeWay({ ...opts, primary: v.primary!, secondary: v.secondary!, candidate: v.candidate!, allowSideEffects: v['allow-side-effects'],
          listen: { host: listen.host, port: listen.port }, timeout, protos });
        try { await tw.listen(); } catch (e) {
          process.stderr.write(`flowtap: cannot listen on ${listen.host}:${listen.port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
          return 2;
        }
        process.stderr.write(`flowtap: diffing on ${listen.host}:${listen.port}: clients get ${v.primary}; copies to ${v.secondary} and ${v.candidate}\n`);
        await untilStopped(duration);
        await tw.close();
        await new Promise((r) => setTimeout(r, Math.min(timeout, 2000))); // let the last copies answer
        report = tw.report();
      } else if (threeWay) {
        const { diffRecordings } = await import('../diff/run.js');
        const r = await diffRecordings(positionals, {
          ...opts, primary: v.primary!, secondary: v.secondary!, candidate: v.candidate!, allowSideEffects: v['allow-side-effects'],
          replay: { workers, timeout }, protos,
          read: { onProblem: (file, line, why) => process.stderr.write(`flowtap: ${file}:${line}: ${why} (skipped)\n`) },
        });
        report = r.report;
      } else {
        const { twoWayFromFiles } = await import('../diff/run.js');
        report = await twoWayFromFiles(positionals, { ...opts, protos, read: { onProblem: (file, line, why) => process.stderr.write(`flowtap: ${file}:${line}: ${why} (skipped)\n`) } });
      }
    } catch (e) {
      if (e instanceof RecordingError) { process.stderr.write(`flowtap: ${e.message}\n`); return 2; }
      throw e;
    }
    const { htmlReport, jsonReport, terminalReport } = await import('../diff/report.js');
    process.stdout.write(terminalReport(report));
    let unwritten = false;
    for (const [flag, text] of [['report-json', () => jsonReport(report)], ['report-html', () => htmlReport(report)]] as const) {
      const path = v[flag];
      if (path === undefined) continue;
      try { writeFileSync(path, text()); } catch (e) {
        // The terminal report above stands; this one is said lost, not thrown as a crash.
        process.stderr.write(`flowtap: --${flag} ${path}: cannot write it: ${(e as Error).message}\n`);
        unwritten = true;
      }
    }
    if (unwritten) return 2;
    return v['fail-on-diff'] && report.withDifferences > 0 ? 1 : 0;
  })();
}
