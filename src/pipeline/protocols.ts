import { dubboProtocol } from './dubbo-session.js';
import { http1Protocol } from './http1-session.js';
import { http2Protocol } from './http2-session.js';
import type { ProtocolModule } from './session.js';

/**
 * Every protocol flowtap can decode, in the order auto-detection tries them. A new codec adds its module
 * here and nothing else changes.
 */
export const protocols: readonly ProtocolModule[] = [http1Protocol, dubboProtocol, http2Protocol];

export function protocolByName(name: string): ProtocolModule | undefined {
  return protocols.find((p) => p.name === name);
}
