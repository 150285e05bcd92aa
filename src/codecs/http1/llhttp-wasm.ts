/**
 * undici's llhttp WebAssembly build, loaded through the pinned `undici` package (SIMD build when the
 * engine has it): the module's exports as this code uses them, one instance for the process, and the
 * small helpers that read C strings out of its memory. `llhttp-adapter.ts` is the parser on top.
 */
import { createRequire } from 'node:module';

export interface LlhttpExports {
  memory: WebAssembly.Memory;
  _initialize?: () => void;
  malloc(n: number): number;
  free(p: number): void;
  llhttp_alloc(type: number): number;
  llhttp_free(p: number): void;
  llhttp_reset(p: number): void;
  llhttp_execute(p: number, data: number, len: number): number;
  llhttp_finish(p: number): number;
  llhttp_resume(p: number): void;
  llhttp_get_error_pos(p: number): number;
  llhttp_get_error_reason(p: number): number;
  llhttp_errno_name(errno: number): number;
  llhttp_get_method(p: number): number;
  llhttp_method_name(method: number): number;
  llhttp_get_upgrade(p: number): number;
  llhttp_get_status_code(p: number): number;
}

/** llhttp's `llhttp_get_<field>(parser)` getters for the version, looked up by field name. */
type Getter = (p: number) => number;

export interface LlhttpWasm {
  x: LlhttpExports;
  /** Input slots: `arenaSize` bytes malloc'd once. */
  arena: number;
  methods: string[];
  major: Getter;
  minor: Getter;
  /** A view of the module's memory, made again only when the memory grows (its buffer is replaced). */
  mem: Uint8Array;
}

export function memoryOf(w: LlhttpWasm): Uint8Array {
  if (w.mem.buffer !== w.x.memory.buffer) w.mem = new Uint8Array(w.x.memory.buffer);
  return w.mem;
}

/** The callbacks llhttp's wasm build imports (`env.wasm_on_*`). */
export type LlhttpEnv = Record<string, (...args: number[]) => number>;

/** Compile and instantiate the module once, on first use: importing flowtap costs nothing until then. */
export function instantiate(env: LlhttpEnv, arenaSize: number): LlhttpWasm {
  const require = createRequire(import.meta.url);
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(require('undici/lib/llhttp/llhttp_simd-wasm.js') as Uint8Array<ArrayBuffer>);
  } catch {
    module = new WebAssembly.Module(require('undici/lib/llhttp/llhttp-wasm.js') as Uint8Array<ArrayBuffer>);
  }
  const x = new WebAssembly.Instance(module, { env }).exports as unknown as LlhttpExports;
  x._initialize?.();
  const getter = (field: string) => (x as unknown as Record<string, Getter>)[`llhttp_get_${field}`];
  const arena = x.malloc(arenaSize);
  return { x, arena, methods: [], major: getter('http_major'), minor: getter('http_minor'), mem: new Uint8Array(x.memory.buffer) };
}

export function cString(x: LlhttpExports, ptr: number): string {
  const mem = new Uint8Array(x.memory.buffer);
  let end = ptr;
  while (mem[end] !== 0) end++;
  return Buffer.from(mem.buffer, ptr, end - ptr).toString('latin1');
}

export function methodName(w: LlhttpWasm, n: number): string {
  return (w.methods[n] ??= cString(w.x, w.x.llhttp_method_name(n)));
}
