/** The port-interceptor example's config handling (no BPF needed): parsing, checks, and the diff it applies. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffInterceptors, loadConfig, type Interceptor } from '../examples/port-interceptor/controller.js';
import { tempDir } from './tools.js';

const a: Interceptor = { name: 'a', port: 18080, proxyPort: 15080, type: 'http' };
const b: Interceptor = { name: 'b', port: 20880, proxyPort: 15880, type: 'dubbo' };

describe('port-interceptor config', () => {
  it('diff: added, removed and edited interceptors; unchanged ones untouched', () => {
    expect(diffInterceptors([a], [a, b])).toEqual({ remove: [], add: [b] });
    expect(diffInterceptors([a, b], [b])).toEqual({ remove: [a], add: [] });
    const moved = { ...a, proxyPort: 15081 };
    expect(diffInterceptors([a, b], [moved, b])).toEqual({ remove: [a], add: [moved] });
    expect(diffInterceptors([a, b], [{ ...b }, { ...a, name: 'renamed' }])).toEqual({ remove: [], add: [] });
  });

  it('loads the shipped YAML, and names the file and the problem when one is wrong', () => {
    const shipped = loadConfig(new URL('../examples/port-interceptor/interceptors.yaml', import.meta.url).pathname);
    expect(shipped.interceptors.map((i) => [i.name, i.port, i.proxyPort, i.type])).toEqual([['orders-http', 18080, 15080, 'http'], ['users-dubbo', 20880, 15880, 'dubbo']]);
    expect(shipped.outputs).toEqual([{ type: 'jsonl', path: 'records.jsonl' }]);
    const f = join(tempDir(), 'bad.yaml');
    writeFileSync(f, 'interceptors:\n  - port: 80\n');
    expect(() => loadConfig(f)).toThrow(`${f}: interceptors[0] needs integer port and proxyPort`);
    writeFileSync(f, 'interceptors:\n  - { port: 80, proxyPort: 81 }\n  - { port: 80, proxyPort: 82 }\n');
    expect(() => loadConfig(f)).toThrow(`${f}: port 80 is intercepted twice`);
    writeFileSync(f, 'interceptors: [\n');
    expect(() => loadConfig(f)).toThrow(new RegExp(`^${f}: .+`));
    expect(() => loadConfig(`${f}.missing`)).toThrow(`${f}.missing: no such file`);
    writeFileSync(f, 'interceptors: nope\n');
    expect(() => loadConfig(f)).toThrow(`${f}: interceptors must be a list`);
  });
});
