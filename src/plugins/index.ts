export { PluginHost } from './host.js';
export type { PluginHostEvents, PluginHostOptions, PluginStats } from './host.js';
export { loadPlugins } from './load.js';
export type { PluginFile } from './load.js';
export { protocolModule } from './protocol.js';
export { definePlugin } from './types.js';
export type {
  FlowtapPlugin, HookResult, PluginExchangeFields, PluginMessage, ProtocolPlugin, RecordHook, RecordHooks, RecordOverride,
} from './types.js';
