// The plugin proxy from dist/, routing /hi/* to one upstream, access records counted (no HEC in the bench).
import http from 'node:http';
import { Balancer, PluginProxy, Router } from '../../dist/gateway/index.js';
const [port, up] = process.argv.slice(2).map(Number);
const proxy = new PluginProxy({ router: new Router({ '/hi/*': { service: 'hi' } }), balancer: new Balancer({ hi: [`127.0.0.1:${up}`] }) });
let records = 0;
proxy.on('access', () => { records++; });
const server = http.createServer(proxy.handler);
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => process.send?.('ready'));
process.on('message', () => process.send?.({ records }));
