/**
 * GoReplay's middleware protocol, exactly: the command is started without a shell (split on spaces, as
 * GoReplay does), every payload (its meta line and message: request, original or replayed response) goes
 * to its stdin as one line of hex, and the lines it writes back are the payloads to go on, possibly
 * changed; a payload it does not write back is dropped. Payloads are matched by their id.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'eventemitter3';
import type { Payload, PayloadType } from './payload.js';

export interface MiddlewareEvents {
  payload: (p: Payload) => void;
  /** The command exited (or could not start): nothing more comes back. */
  exit: (why: string) => void;
  /** A line back that is not hex of a payload. */
  problem: (reason: string) => void;
}

export class Middleware extends EventEmitter<MiddlewareEvents> {
  private readonly child: ChildProcess;
  private tail = '';
  exited: string | null = null;

  constructor(readonly command: string) {
    super();
    const [cmd, ...args] = command.split(' ').filter(Boolean);
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdin!.on('error', () => {}); // a middleware that exits mid-write: reported by 'exit'
    this.child.on('error', (e) => this.gone(`middleware "${command}" could not start: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    this.child.on('exit', (code, signal) => this.gone(`middleware "${command}" exited (${signal ?? `code ${code}`})`));
    this.child.stdout!.setEncoding('latin1');
    this.child.stdout!.on('data', (d: string) => this.lines(d));
  }

  /** False when the middleware is gone (the payload is not sent). */
  send(p: Payload): boolean {
    if (this.exited || !p.raw) return false;
    const meta = Buffer.from(`${p.type} ${p.id} ${p.timestamp} ${p.latency}\n`);
    return this.child.stdin!.write(Buffer.concat([meta, p.raw]).toString('hex') + '\n') || true;
  }

  /** Close its stdin and wait (up to `ms`) for it to finish writing. */
  async end(ms = 2000): Promise<void> {
    if (this.exited) return;
    this.child.stdin!.end();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { this.child.kill(); resolve(); }, ms);
      // 'close', not 'exit': the last lines it wrote are read by then.
      this.child.once('close', () => { clearTimeout(t); resolve(); });
    });
  }

  private gone(why: string): void {
    if (this.exited) return;
    this.exited = why;
    this.emit('exit', why);
  }

  private lines(d: string): void {
    const text = this.tail + d;
    const parts = text.split('\n');
    this.tail = parts.pop()!;
    for (const line of parts) {
      if (line.trim() === '') continue;
      const bytes = /^[0-9a-fA-F]*$/.test(line.trim()) ? Buffer.from(line.trim(), 'hex') : null;
      const nl = bytes ? bytes.indexOf(10) : -1;
      const meta = bytes && nl > 0 ? bytes.subarray(0, nl).toString('latin1').split(' ') : [];
      if (!bytes || meta.length < 3 || !/^[123]$/.test(meta[0]) || !/^\d+$/.test(meta[2])) {
        this.emit('problem', `middleware wrote a line that is not a hex payload: ${JSON.stringify(line.slice(0, 40))}`);
        continue;
      }
      this.emit('payload', {
        type: Number(meta[0]) as PayloadType, id: meta[1], timestamp: BigInt(meta[2]),
        latency: meta[3] !== undefined && /^-?\d+$/.test(meta[3]) ? BigInt(meta[3]) : -1n, protocol: 'http1', raw: bytes.subarray(nl + 1),
      });
    }
  }
}
