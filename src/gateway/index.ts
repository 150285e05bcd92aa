export { DubboCallError, DubboClient } from './dubbo-client.js';
export type { DubboAnswer, DubboClientEvents, DubboClientOptions, DubboFailure, InvokeSpec } from './dubbo-client.js';
export { descriptor, toJava, toJson } from './java-json.js';
export type { Typed } from './java-json.js';
export { httpStatusForDubbo, Rest2Dubbo } from './rest2dubbo.js';
export type { Rest2DubboConfig, Rest2DubboRoute, ArgumentSource } from './rest2dubbo.js';
