import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The library: one chunked build so shared modules are not duplicated between entries,
    // and `sideEffects: false` lets bundlers drop what a user does not import.
    entry: {
      index: 'src/index.ts', 'codecs/index': 'src/codecs/index.ts', 'plugin-worker': 'src/plugins/plugin-worker.ts', 'decode-worker': 'src/pipeline/decode-worker.ts', 'tap-worker': 'src/pipeline/tap-cluster-worker.ts', 'read-worker': 'src/capture/read-worker.ts',
      'sinks/index': 'src/sinks/index.ts', 'bpf/index': 'src/bpf/index.ts', 'replay/index': 'src/replay/index.ts', 'diff/index': 'src/diff/index.ts', 'gateway/index': 'src/gateway/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    splitting: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    treeshake: true,
    // import.meta.url in the CJS build (the llhttp adapter loads undici's wasm through it).
    shims: true,
  },
  {
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
  },
]);
