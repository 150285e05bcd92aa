/**
 * Recording files: reading `.gor` and flowtap recordings (plain or gzip, told apart by their bytes, not
 * their names), several files or a glob merged by timestamp; writing them with GoReplay's name tokens
 * (`%Y %m %d %H %M %S`) and size-limited chunks (`name_0.gor`, `name_1.gor`, ...).
 */
import { accessSync, constants, createReadStream, createWriteStream, existsSync, readdirSync, statSync, type WriteStream } from 'node:fs';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import { createGunzip, createGzip, type Gzip } from 'node:zlib';
import { decodeFtr, encodeFtr, FTR_HEADER } from './ftr.js';
import { encodeGor, GorReader } from './gor.js';
import type { Payload } from './payload.js';

/** A file could not be read as a recording: one sentence naming it. */
export class RecordingError extends Error {
  override name = 'RecordingError';
}

export interface ReadOptions {
  /** Payloads read ahead per file and sorted, so out-of-order timestamps come out in order. Default 100. */
  readDepth?: number;
  /** A malformed record was skipped. */
  onProblem?: (file: string, line: number, reason: string) => void;
}

/** `*` and `?` in any path segment, as GoReplay's filepath.Glob; a path without them is taken as is. */
export function expandGlob(pattern: string): string[] {
  if (!/[*?[]/.test(pattern)) return [pattern];
  const parts = pattern.split('/');
  let bases = [pattern.startsWith('/') ? '/' : '.'];
  for (const [i, part] of parts.entries()) {
    if (part === '' && i === 0) continue;
    const next: string[] = [];
    for (const base of bases) {
      if (!/[*?[]/.test(part)) { next.push(join(base, part)); continue; }
      const re = new RegExp(`^${part.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
      let names: string[] = [];
      try { names = readdirSync(base); } catch { /* not a directory */ }
      for (const n of names.sort()) if (re.test(n)) next.push(join(base, n));
    }
    bases = next;
  }
  return bases.filter((p) => existsSync(p));
}

/** One file's payloads, a few read ahead and sorted by timestamp. */
class FileSource {
  private readonly ahead: Payload[] = [];
  private head = 0;
  private readonly incoming: Payload[] = [];
  private done = false;
  private iter: AsyncIterator<Buffer>;
  private parse: ((chunk: Buffer) => void) | null = null;
  private finish: (() => void) | null = null;
  private line = 0;

  constructor(readonly path: string, private readonly depth: number, private readonly opts: ReadOptions) {
    this.iter = this.chunks()[Symbol.asyncIterator]();
  }

  /** The earliest payload among those read ahead, without taking it. */
  /** Enough is read ahead that the earliest payload is known (or the file is done). */
  get ready(): boolean {
    return this.done || this.ahead.length - this.head >= this.depth;
  }

  /** Read until `ready`. */
  async fillUp(): Promise<void> {
    while (!this.ready) await this.fill();
  }

  /** The earliest payload read ahead (call when `ready`), or null at the end. */
  peekReady(): Payload | null {
    return this.head < this.ahead.length ? this.ahead[this.head] : null;
  }

  takeReady(): Payload | null {
    const p = this.peekReady();
    if (p) {
      this.head++;
      // Taken from the front by index, compacted now and then (shift() would move the rest every time).
      if (this.head > 4096 && this.head * 2 > this.ahead.length) { this.ahead.splice(0, this.head); this.head = 0; }
    }
    return p;
  }

  private async *chunks(): AsyncGenerator<Buffer> {
    const raw = createReadStream(this.path, { highWaterMark: 1 << 20 });
    const first = await new Promise<Buffer | null>((resolve, reject) => {
      raw.once('readable', () => resolve(raw.read(2) as Buffer | null));
      raw.once('error', reject);
    }).catch((e: NodeJS.ErrnoException) => {
      throw new RecordingError(`cannot read ${this.path}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a directory' : e.message}`);
    });
    if (first === null) return;
    raw.unshift(first);
    const gz = first[0] === 0x1f && first[1] === 0x8b;
    const stream = gz ? raw.pipe(createGunzip()) : raw;
    try {
      for await (const c of stream) yield c as Buffer;
    } catch (e) {
      throw new RecordingError(`${this.path}: ${gz ? 'broken gzip data' : 'read error'}: ${(e as Error).message}`);
    } finally {
      raw.destroy();
    }
  }

  private async fill(): Promise<void> {
    const r = await this.iter.next();
    if (r.done) {
      this.finish?.();
      this.done = true;
    } else {
      if (!this.parse) this.detect(r.value);
      this.parse!(r.value);
    }
    for (const p of this.incoming.splice(0)) insertSorted(this.ahead, p, this.head);
  }

  private detect(first: Buffer): void {
    const head = first.subarray(0, 64).toString('latin1');
    const emit = (p: Payload) => this.incoming.push(p);
    if (head.startsWith(FTR_HEADER.slice(0, 20))) {
      let tail = '';
      let sawHeader = false;
      const lineOf = (l: string) => {
        this.line++;
        if (!sawHeader) { sawHeader = true; return; }
        if (l.trim() === '') return;
        const p = decodeFtr(l);
        if (typeof p === 'string') this.opts.onProblem?.(this.path, this.line, p);
        else emit(p);
      };
      this.parse = (chunk) => {
        const text = tail + chunk.toString('utf8');
        const lines = text.split('\n');
        tail = lines.pop()!;
        for (const l of lines) lineOf(l);
      };
      this.finish = () => {
        if (tail.trim() !== '') {
          this.line++;
          const p = decodeFtr(tail);
          if (typeof p === 'string') this.opts.onProblem?.(this.path, this.line, `the file ends inside a record (${p})`);
          else emit(p);
        }
      };
      return;
    }
    if (/^[123] [0-9a-f]+ \d+/i.test(head)) {
      const gor = new GorReader(emit);
      let reported = 0;
      const report = () => {
        for (const pr of gor.problems.slice(reported)) this.opts.onProblem?.(this.path, pr.line, pr.reason);
        reported = gor.problems.length;
      };
      this.parse = (chunk) => { gor.write(chunk); report(); };
      this.finish = () => { gor.end(); report(); };
      return;
    }
    throw new RecordingError(`${this.path}: neither a .gor file nor a flowtap recording (it starts with ${JSON.stringify(head.slice(0, 24))})`);
  }
}

/** Insert after `from`, keeping timestamp order (in-order input: a push). */
function insertSorted(a: Payload[], p: Payload, from: number): void {
  let i = a.length;
  while (i > from && a[i - 1].timestamp > p.timestamp) i--;
  if (i === a.length) a.push(p);
  else a.splice(i, 0, p);
}

/**
 * Every payload of the files (each a path or a glob), merged by timestamp across files. Rejects with a
 * RecordingError naming the file that cannot be read; a malformed record inside a file is skipped and
 * reported to `onProblem`.
 */
export async function* readRecordings(patterns: readonly string[], opts: ReadOptions = {}): AsyncGenerator<Payload> {
  for await (const batch of readRecordingBatches(patterns, opts)) for (const p of batch) yield p;
}

/**
 * The same payloads in batches: one await per batch rather than per payload (what a replay at full
 * speed wants).
 */
export async function* readRecordingBatches(patterns: readonly string[], opts: ReadOptions = {}): AsyncGenerator<Payload[]> {
  const paths: string[] = [];
  for (const p of patterns) {
    const found = expandGlob(p);
    if (found.length === 0) throw new RecordingError(`${p}: no such file`);
    paths.push(...found);
  }
  for (const p of paths) if (existsSync(p) && statSync(p).isDirectory()) throw new RecordingError(`cannot read ${p}: it is a directory`);
  const sources = paths.map((p) => new FileSource(p, opts.readDepth ?? 100, opts));
  for (;;) {
    for (const s of sources) if (!s.ready) await s.fillUp();
    const batch: Payload[] = [];
    // Take the earliest head while every source can say what its earliest is without reading on.
    while (batch.length < 1024 && sources.every((s) => s.ready)) {
      let best: FileSource | null = null;
      let bestP: Payload | null = null;
      for (const s of sources) {
        const p = s.peekReady();
        if (p && (!bestP || p.timestamp < bestP.timestamp)) { best = s; bestP = p; }
      }
      if (!best) break;
      batch.push(best.takeReady()!);
    }
    if (batch.length === 0) return;
    yield batch;
  }
}

// ---- writing ----

export interface WriteOptions {
  /** Start a new numbered file past this many bytes (before compression). Default: one file. */
  sizeLimit?: number;
  /** `gor` or `flowtap`; default by the name: `.gor` / `.gor.gz` is GoReplay's, anything else flowtap's. */
  format?: 'gor' | 'flowtap';
}

/** GoReplay's name tokens, from the time the file is opened. */
export function expandName(pattern: string, now = new Date()): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return pattern.replace(/%([YmdHMS])/g, (_m, t: string) => {
    switch (t) {
      case 'Y': return String(now.getFullYear());
      case 'm': return two(now.getMonth() + 1);
      case 'd': return two(now.getDate());
      case 'H': return two(now.getHours());
      case 'M': return two(now.getMinutes());
      default: return two(now.getSeconds());
    }
  });
}

/**
 * Why a recording could not be written at `pattern` (its directory is missing or not writable, or the name
 * is a directory), or null: checked before recording starts, so a wrong path is an error at once.
 */
export function unwritablePath(pattern: string): string | null {
  const path = resolvePath(expandName(pattern));
  try {
    if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) return `${pattern} is a directory`;
    const dir = dirname(path);
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return `${dirname(pattern) === '.' ? dir : dirname(pattern)}: no such directory`;
    accessSync(dir, constants.W_OK);
    return null;
  } catch (e) {
    return `cannot write in ${dirname(path)}: ${(e as NodeJS.ErrnoException).code === 'EACCES' ? 'permission denied' : (e as Error).message}`;
  }
}

/** `dir/name.gor.gz` → `dir/name_N.gor.gz`. */
function chunkName(path: string, n: number): string {
  const b = basename(path);
  const dot = b.search(/\.(gor|ftr|jsonl)(\.gz)?$/);
  const at = dot < 0 ? b.length : dot;
  return join(dirname(path), `${b.slice(0, at)}_${n}${b.slice(at)}`);
}

export class RecordingWriter {
  readonly format: 'gor' | 'flowtap';
  /** Payloads a `.gor` file cannot hold (not HTTP/1): skipped, counted. */
  skipped = 0;
  written = 0;
  /**
   * Why the file could not be written (it could not be opened, the disk filled), or null. From then on
   * nothing more is written and payloads are counted in `lost`; whatever was handed out just before it may
   * be missing from the file too.
   */
  failure: Error | null = null;
  lost = 0;
  readonly files: string[] = [];
  private out: WriteStream | null = null;
  private gzip: Gzip | null = null;
  private bytes = 0;
  private chunk = 0;
  private readonly gz: boolean;

  constructor(private readonly pattern: string, private readonly opts: WriteOptions = {}) {
    this.format = opts.format ?? (/\.gor(\.gz)?$/.test(pattern) ? 'gor' : 'flowtap');
    this.gz = pattern.endsWith('.gz');
  }

  /** Write one payload; false when the stream wants a pause (wait for `drained()`). */
  write(p: Payload): boolean {
    if (this.failure) { this.lost++; return true; }
    let data: Buffer;
    if (this.format === 'gor') {
      if (p.raw === undefined || p.protocol !== 'http1') { this.skipped++; return true; }
      data = encodeGor(p);
    } else data = Buffer.from(encodeFtr(p));
    if (!this.out || (this.opts.sizeLimit && this.bytes + data.length > this.opts.sizeLimit && this.bytes > 0)) this.open();
    this.bytes += data.length;
    this.written++;
    return (this.gzip ?? this.out!).write(data);
  }

  /** The stream asked for a pause: wait for `drained()` before writing on. */
  get needsDrain(): boolean {
    return (this.gzip ?? this.out)?.writableNeedDrain ?? false;
  }

  drained(): Promise<void> {
    const s = this.gzip ?? this.out;
    if (this.failure || !s || !s.writableNeedDrain) return Promise.resolve();
    // A file that fails while full never drains: its failure ends the wait too.
    return new Promise((r) => { s.once('drain', () => r()); s.once('error', () => r()); this.out?.once('error', () => r()); });
  }

  async close(): Promise<void> {
    await this.end();
  }

  private open(): void {
    void this.end();
    const name = expandName(this.pattern);
    const path = this.opts.sizeLimit ? chunkName(name, this.chunk++) : name;
    this.files.push(path);
    this.out = createWriteStream(path);
    // A stream error is kept, never thrown: a recorder in front of live traffic must not take it down.
    const failed = (e: Error) => { this.failure ??= new Error(`cannot write ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'its directory does not exist' : e.message}`); };
    this.out.on('error', failed);
    this.gzip = this.gz ? createGzip() : null;
    this.gzip?.on('error', failed);
    if (this.gzip) this.gzip.pipe(this.out);
    this.bytes = 0;
    if (this.format === 'flowtap') {
      const h = Buffer.from(FTR_HEADER + '\n');
      (this.gzip ?? this.out).write(h);
      this.bytes += h.length;
    }
  }

  private end(): Promise<void> {
    const out = this.out;
    const gzip = this.gzip;
    this.out = null;
    this.gzip = null;
    if (!out) return Promise.resolve();
    // Done when the file is closed, or failed (the failure is in `failure`).
    return new Promise((resolve) => {
      if (out.destroyed) { resolve(); return; }
      out.once('close', () => resolve());
      out.once('error', () => resolve());
      if (gzip) gzip.end(); else out.end();
    });
  }
}
