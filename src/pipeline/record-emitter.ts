/**
 * An emitter whose `record` listeners each run behind their own boundary: one that throws is the user's
 * error (`userError`), not a decoding one, and does not starve the others, while the emitter keeps its own
 * semantics (once, context, order). `off` and `listeners` see the user's function.
 */
import { EventEmitter } from 'eventemitter3';
import type { AnyRecord } from '../records/types.js';
import { deliver, type RecordCallbackError } from './deliver.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any listener of any event
type Listener = (...args: any[]) => void;

interface RecordEvents {
  record: (record: AnyRecord) => void;
  userError: (error: RecordCallbackError) => void;
}

export abstract class RecordEmitter<E extends RecordEvents> extends EventEmitter<E> {
  private readonly guarded = new WeakMap<Listener, Listener>();

  /** A `record` listener threw: count it, then emit `userError`. */
  protected abstract readonly reportUserError: (e: RecordCallbackError) => void;

  private guard(event: string | symbol, fn: Listener): Listener {
    if (event !== 'record') return fn;
    let g = this.guarded.get(fn);
    if (!g) {
      const report = this.reportUserError;
      g = function (this: unknown, r: AnyRecord) { deliver(fn, r, report, this); };
      (g as { listener?: Listener }).listener = fn;
      this.guarded.set(fn, g);
    }
    return g;
  }

  override on<T extends EventEmitter.EventNames<E>>(event: T, fn: EventEmitter.EventListener<E, T>, context?: unknown): this {
    return super.on(event, this.guard(event, fn) as EventEmitter.EventListener<E, T>, context);
  }

  override addListener<T extends EventEmitter.EventNames<E>>(event: T, fn: EventEmitter.EventListener<E, T>, context?: unknown): this {
    return this.on(event, fn, context);
  }

  override once<T extends EventEmitter.EventNames<E>>(event: T, fn: EventEmitter.EventListener<E, T>, context?: unknown): this {
    return super.once(event, this.guard(event, fn) as EventEmitter.EventListener<E, T>, context);
  }

  override removeListener<T extends EventEmitter.EventNames<E>>(event: T, fn?: EventEmitter.EventListener<E, T>, context?: unknown, once?: boolean): this {
    const g = fn && event === 'record' ? this.guarded.get(fn) ?? fn : fn;
    return super.removeListener(event, g as EventEmitter.EventListener<E, T> | undefined, context, once);
  }

  override off<T extends EventEmitter.EventNames<E>>(event: T, fn?: EventEmitter.EventListener<E, T>, context?: unknown, once?: boolean): this {
    return this.removeListener(event, fn, context, once);
  }

  override listeners<T extends EventEmitter.EventNames<E>>(event: T): EventEmitter.EventListener<E, T>[] {
    return super.listeners(event).map((l) => ((l as { listener?: EventEmitter.EventListener<E, T> }).listener ?? l));
  }
}
