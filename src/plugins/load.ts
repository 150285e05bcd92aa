/** Loading plugins from files (`--plugin FILE`, a config's `plugins` list) into a PluginHost. */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PluginHost, type PluginHostOptions } from './host.js';
import type { FlowtapPlugin } from './types.js';

export interface PluginFile {
  path: string;
  /** Run the plugin's hooks in a worker thread (hard timeout per batch). Default: in this thread. */
  isolate?: 'worker';
}

/** Import each file's default export (a plugin, or a function returning one) and add it to a host. */
export async function loadPlugins(files: readonly (string | PluginFile)[], options: PluginHostOptions = {}): Promise<PluginHost> {
  const host = new PluginHost(options);
  for (const f of files) {
    const spec = typeof f === 'string' ? { path: f } : f;
    const path = resolve(spec.path);
    let plugin: FlowtapPlugin;
    try {
      const mod = await import(pathToFileURL(path).href);
      const exported = mod.default ?? mod;
      plugin = typeof exported === 'function' ? await exported() : exported;
    } catch (e) {
      throw new Error(`cannot load plugin ${spec.path}: ${(e as Error).message}`);
    }
    if (!plugin || typeof plugin.name !== 'string') throw new Error(`plugin ${spec.path}: its default export is not a plugin (an object with a name)`);
    try {
      if (spec.isolate === 'worker') await host.addWorker(path, plugin);
      else host.add(plugin);
    } catch (e) {
      throw new Error(`plugin ${spec.path}: ${(e as Error).message}`);
    }
  }
  return host;
}
