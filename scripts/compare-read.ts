/**
 * Before/after check for changes under the decoders: `flowtap read` of every capture given, by two builds,
 * compared line for line. Besides each file as it is, a lossy copy (every 7th packet of a classic pcap
 * dropped, seeded) exercises the gap and resync paths, which a clean capture never reaches.
 *
 *   node --import tsx scripts/compare-read.ts OLD_DIST NEW_DIST FILE...   (exit 1 when anything differs)
 *
 * Fields added on purpose can be ignored with IGNORE_FIELDS=attributes,tls.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

const [oldDist, newDist, ...files] = process.argv.slice(2);
if (!oldDist || !newDist || files.length === 0) {
  process.stderr.write('usage: compare-read.ts OLD_DIST NEW_DIST FILE...\n');
  process.exit(2);
}
const ignore = (process.env.IGNORE_FIELDS ?? '').split(',').filter(Boolean);
const work = mkdtempSync(join(tmpdir(), 'flowtap-compare-'));

/** A classic pcap with every `nth` packet left out; null for pcapng or anything else. */
function lossy(file: string, nth: number): string | null {
  const b = readFileSync(file);
  if (b.length < 24) return null;
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const be = magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1;
  if (!le && !be) return null;
  const parts: Buffer[] = [b.subarray(0, 24)];
  let at = 24;
  let n = 0;
  while (at + 16 <= b.length) {
    const len = le ? b.readUInt32LE(at + 8) : b.readUInt32BE(at + 8);
    const end = at + 16 + len;
    if (end > b.length) break;
    if (++n % nth !== 0) parts.push(b.subarray(at, end));
    at = end;
  }
  const out = join(work, `lossy${nth}-${basename(file)}`);
  writeFileSync(out, Buffer.concat(parts));
  return out;
}

function read(dist: string, file: string, args: string[]): string[] {
  const r = spawnSync('node', [join(dist, 'cli.js'), 'read', file, ...args], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const lines = r.stdout.split('\n').filter(Boolean);
  if (ignore.length === 0) return [...lines, `exit ${r.status}`, r.stderr.trim()];
  return [...lines.map((l) => {
    const o = JSON.parse(l) as Record<string, unknown>;
    for (const f of ignore) delete o[f];
    return JSON.stringify(o);
  }), `exit ${r.status}`, r.stderr.trim()];
}

let differing = 0;
let compared = 0;
for (const file of files) {
  const inputs = [file, lossy(file, 7), lossy(file, 3)].filter((f): f is string => f !== null);
  for (const input of inputs) {
    for (const args of [[], ['--values']]) {
      const a = read(oldDist, input, args);
      const b = read(newDist, input, args);
      compared++;
      const first = a.findIndex((line, i) => line !== b[i]);
      if (first < 0 && a.length === b.length) continue;
      differing++;
      const at = first < 0 ? Math.min(a.length, b.length) : first;
      const x = a[at] ?? '<none>';
      const y = b[at] ?? '<none>';
      let c = 0;
      while (c < x.length && x[c] === y[c]) c++;
      const from = Math.max(0, c - 150);
      process.stdout.write(`DIFF ${basename(input)} ${args.join(' ')} (${a.length} vs ${b.length} lines), line ${at + 1}, char ${c}:\n`
        + `  old: …${x.slice(from, c + 150)}\n  new: …${y.slice(from, c + 150)}\n`);
    }
  }
}
process.stdout.write(`${compared} reads compared, ${differing} differ\n`);
process.exit(differing > 0 ? 1 : 0);
