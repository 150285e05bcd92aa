/**
 * A bounded pool of keep-alive connections to one target: at most `size` connections, one request in
 * flight on each (HTTP/1 answers in order; Dubbo too, so a slow call cannot hold others back unseen).
 * A send waits for a free connection, so a slow target slows the replay instead of filling memory.
 */
import { TargetConnection, type SendResult, type Target, type TargetOptions } from './connection.js';

export class TargetPool {
  private readonly idle: TargetConnection[] = [];
  private readonly all: TargetConnection[] = [];
  private readonly waiting: ((c: TargetConnection) => void)[] = [];

  constructor(
    private readonly target: Target,
    private readonly protocol: 'http1' | 'dubbo',
    private readonly size: number,
    private readonly opts: TargetOptions,
  ) {}

  /** Requests waiting for a connection. */
  get queued(): number {
    return this.waiting.length;
  }

  async send(request: Buffer, method?: string): Promise<SendResult> {
    const c = this.idle.pop() ?? await this.acquire();
    try {
      return await c.send(request, method);
    } finally {
      this.release(c);
    }
  }

  close(): void {
    for (const c of this.all) c.close();
  }

  private acquire(): Promise<TargetConnection> {
    const c = this.idle.pop();
    if (c) return Promise.resolve(c);
    if (this.all.length < this.size) {
      const fresh = new TargetConnection(this.target, this.protocol, this.opts);
      this.all.push(fresh);
      return Promise.resolve(fresh);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(c: TargetConnection): void {
    const next = this.waiting.shift();
    if (next) next(c);
    else this.idle.push(c);
  }
}
