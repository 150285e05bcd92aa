/**
 * The destination a client meant before interception: SO_ORIGINAL_DST via getsockopt (answered by the
 * kernel after an iptables REDIRECT, or by flowtap's cgroup hook), and a TPROXY listener (IP_TRANSPARENT)
 * for those who steer with iptables instead.
 */
import net, { type Socket } from 'node:net';
import { describeErrno, libbpf } from './libbpf.js';

const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SOL_IP = 0;
const SOL_IPV6 = 41;
const SO_ORIGINAL_DST = 80;
const IP_TRANSPARENT = 19;
const IPV6_TRANSPARENT = 75;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM_NONBLOCK_CLOEXEC = 1 | 0o4000 | 0o2000000;

export interface OriginalDestination { address: string; port: number; family: 'IPv4' | 'IPv6' }

/** The OS file descriptor behind a Node socket (TCP handles on Linux expose it). */
export function socketFd(socket: Socket | net.Server): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('this socket has no file descriptor (closed, or not a TCP socket)');
  return fd;
}

/**
 * Where the client was going before it was redirected, or null when it was not redirected (the kernel has no
 * original destination for it).
 */
export function getOriginalDestination(socket: Socket): OriginalDestination | null {
  const lib = libbpf();
  const fd = socketFd(socket);
  const len = Buffer.alloc(4);
  const v4 = Buffer.alloc(16);
  len.writeUInt32LE(v4.length);
  if (lib.getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, v4, len) === 0 && v4.readUInt16LE(0) === AF_INET) {
    return { address: [...v4.subarray(4, 8)].join('.'), port: v4.readUInt16BE(2), family: 'IPv4' };
  }
  const v6 = Buffer.alloc(28);
  len.writeUInt32LE(v6.length);
  if (lib.getsockopt(fd, SOL_IPV6, SO_ORIGINAL_DST, v6, len) === 0 && v6.readUInt16LE(0) === AF_INET6) {
    const groups: string[] = [];
    for (let i = 8; i < 24; i += 2) groups.push(v6.readUInt16BE(i).toString(16));
    return { address: new net.SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address, port: v6.readUInt16BE(2), family: 'IPv6' };
  }
  return null;
}

function sockaddr(host: string, port: number): { family: number; addr: Buffer } {
  const family = net.isIPv6(host) ? AF_INET6 : AF_INET;
  if (family === AF_INET) {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(port, 2);
    host.split('.').forEach((o, i) => { b[4 + i] = Number(o); });
    return { family, addr: b };
  }
  const b = Buffer.alloc(28);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  const sa = new net.SocketAddress({ address: host, family: 'ipv6' });
  // Expand "::" forms to eight groups.
  const [head, tail = ''] = sa.address.split('::');
  const h = head ? head.split(':') : [];
  const t = sa.address.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), 8 + i * 2));
  return { family, addr: b };
}

/**
 * A listening net.Server whose socket has IP_TRANSPARENT set before bind, as an iptables TPROXY target needs
 * (it accepts connections addressed to any IP). Requires CAP_NET_ADMIN.
 */
export async function listenTransparent(options: { host?: string; port: number; backlog?: number }): Promise<net.Server> {
  const lib = libbpf();
  const { family, addr } = sockaddr(options.host ?? '0.0.0.0', options.port);
  const fd = lib.socket(family, SOCK_STREAM_NONBLOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`socket() failed: ${describeErrno(lib.errno())}`);
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  const fail = (what: string) => {
    const e = lib.errno();
    lib.closeFd(fd);
    const hint = e === 1 ? ': IP_TRANSPARENT needs CAP_NET_ADMIN (run as root)' : '';
    return new Error(`${what} failed: ${describeErrno(e)}${hint}`);
  };
  if (lib.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) < 0) throw fail('setsockopt(SO_REUSEADDR)');
  if (family === AF_INET ? lib.setsockopt(fd, SOL_IP, IP_TRANSPARENT, one, 4) < 0 : lib.setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, one, 4) < 0) {
    throw fail('setsockopt(IP_TRANSPARENT)');
  }
  if (lib.bind(fd, addr, addr.length) < 0) throw fail(`bind(${options.host ?? '0.0.0.0'}:${options.port})`);
  if (lib.listen(fd, options.backlog ?? 511) < 0) throw fail('listen()');
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, () => { server.off('error', reject); resolve(); });
  });
  return server;
}

/** Whether IP_TRANSPARENT is set on a listening server's socket. */
export function isTransparent(server: net.Server): boolean {
  const lib = libbpf();
  const v = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4);
  const fd = socketFd(server);
  const addr = server.address();
  const v6 = typeof addr === 'object' && addr?.family === 'IPv6';
  const r = v6 ? lib.getsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, v, len) : lib.getsockopt(fd, SOL_IP, IP_TRANSPARENT, v, len);
  return r === 0 && v.readInt32LE(0) === 1;
}
