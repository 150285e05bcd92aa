/**
 * Protobuf schemas for gRPC records: `.proto` files loaded with protobufjs, each `/pkg.Service/Method` mapped
 * to its request and response types, messages decoded to JSON-ready objects. protobufjs is loaded only when
 * a registry is made, so decoders without schemas never load it.
 */
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

interface PbType { decode(b: Uint8Array): unknown; toObject(m: unknown, o: object): Record<string, unknown>; fullName: string }
interface PbMethod { requestType: string; responseType: string; resolvedRequestType: PbType | null; resolvedResponseType: PbType | null }
interface PbNamespace { nestedArray?: PbNamespace[]; methodsArray?: PbMethod[]; fullName: string; name: string }
interface PbRoot extends PbNamespace { resolveAll(): PbRoot; lookupType(name: string): PbType }
interface Protobufjs { Root: new () => { loadSync(files: string[], o?: object): PbRoot } }

const TO_OBJECT = { longs: String, enums: String, bytes: String, defaults: false };

export class ProtoRegistry {
  private readonly methods = new Map<string, { request: PbType; response: PbType }>();

  private constructor(private readonly root: PbRoot) {
    const walk = (ns: PbNamespace) => {
      if (ns.methodsArray) {
        const service = ns.fullName.replace(/^\./, '');
        for (const m of ns.methodsArray) {
          const path = `/${service}/${(m as unknown as { name: string }).name}`;
          if (m.resolvedRequestType && m.resolvedResponseType) this.methods.set(path, { request: m.resolvedRequestType, response: m.resolvedResponseType });
        }
      }
      for (const n of ns.nestedArray ?? []) walk(n);
    };
    walk(root);
  }

  /** Load every `.proto` under `dir` (recursively). Throws an Error with one clear sentence when it cannot. */
  static load(dir: string): ProtoRegistry {
    let files: string[];
    try {
      files = protoFiles(dir);
    } catch (e) {
      throw new Error(`cannot read the proto directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (files.length === 0) throw new Error(`no .proto files under ${dir}`);
    const pb = createRequire(import.meta.url)('protobufjs') as Protobufjs;
    try {
      return new ProtoRegistry(new pb.Root().loadSync(files, { keepCase: true }).resolveAll());
    } catch (e) {
      throw new Error(`cannot load the .proto files under ${dir}: ${(e as Error).message}`);
    }
  }

  /** Services' methods known, as gRPC paths. */
  get paths(): string[] {
    return [...this.methods.keys()];
  }

  /** A message of a named type (e.g. `tutorial.AddressBook`) as a plain object; null if it does not decode. */
  decodeType(typeName: string, bytes: Uint8Array): Record<string, unknown> | null {
    try {
      const t = this.root.lookupType(typeName);
      return t.toObject(t.decode(bytes), TO_OBJECT);
    } catch {
      return null;
    }
  }

  /** A gRPC message of `path`'s request or response type; undefined when the method is unknown, null when it does not decode. */
  decode(path: string, direction: 'request' | 'response', bytes: Uint8Array): Record<string, unknown> | null | undefined {
    const m = this.methods.get(path);
    if (!m) return undefined;
    const t = direction === 'request' ? m.request : m.response;
    try {
      return t.toObject(t.decode(bytes), TO_OBJECT);
    } catch {
      return null;
    }
  }
}

function protoFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...protoFiles(p));
    else if (name.endsWith('.proto')) out.push(p);
  }
  return out.sort();
}
