import { dubboProtocol } from './dubbo-session.js';
import { http1Protocol } from './http1-session.js';
import { http2Protocol } from './http2-session.js';
import type { ProtocolModule } from './session.js';

/**
 * The built-in protocols, in the order auto-detection tries them. A new codec adds its module here and
 * nothing else changes; protocol plugins are added per reader or proxy (`SessionOptions.protocols`).
 */
export const protocols: readonly ProtocolModule[] = [http1Protocol, dubboProtocol, http2Protocol];
