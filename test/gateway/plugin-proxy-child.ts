// The example plugin proxy in a process of its own, for the memory test: it reports what it still holds
// after a full GC (heap + ArrayBuffers) whenever asked.
import { startPluginProxy } from '../../examples/plugin-proxy/plugin-proxy.js';

const p = await startPluginProxy(process.argv[2]);
process.send!({ port: p.port });
process.on('message', () => {
  (globalThis as { gc?: () => void }).gc!();
  const m = process.memoryUsage();
  process.send!({ retained: m.heapUsed + m.arrayBuffers });
});
process.on('disconnect', () => process.exit(0));
