/**
 * `flowtap/bpf` — the BPF port interceptor. Kept out of the root entry: it loads koffi and the system's
 * libbpf (only when an interceptor is opened, not at import).
 */
export { PortInterceptor } from './interceptor.js';
export type { PortMapping, PortInterceptorOptions, PortInterceptorEvents, InterceptorStats } from './interceptor.js';
export { getOriginalDestination, listenTransparent, isTransparent } from './original-dst.js';
export type { OriginalDestination } from './original-dst.js';
export { BpfObject, BpfMap, AttachType, portCodec, pidCodec, counterCodec, rawCodec } from './object.js';
export type { MapCodec, Link } from './object.js';
export { BpfSetupError, setLibbpfLog } from './libbpf.js';
export { checkSystem, kernelVersion, cgroup2Mount } from './system.js';
/** True: this build includes the interceptor (whether this machine can run it is `checkSystem`'s call). */
export const bpfAvailable = true;
