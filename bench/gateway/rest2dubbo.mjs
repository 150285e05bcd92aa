// rest2dubbo from dist/ in front of a Dubbo provider.
import http from 'node:http';
import { Rest2Dubbo } from '../../dist/gateway/index.js';
const [port, dubbo] = process.argv.slice(2).map(Number);
const g = new Rest2Dubbo({ upstream: { host: '127.0.0.1', port: dubbo, connections: 4 }, routes: [{ method: 'POST', path: '/v1/getBook',
  service: 'io.flomesh.demo.api.BookWarehouseService', version: 'v1', call: 'getBook', parameterTypes: ['java.lang.String'], args: [{ from: 'body', field: 'id' }] }] });
await g.client.ready();
http.createServer(g.handler).listen(port, '127.0.0.1', () => process.send?.('ready'));
