/** The benches' peers in processes of their own: free ports, starting a script that says when it is ready, RSS. */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';

/** A free loopback port, for a peer started in another process. */
export async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

/** Fork `script` (a path); resolves once it sends its first message (it is listening). */
export function startChild(script: string, args: (string | number)[]): Promise<ChildProcess> {
  const p = fork(script, args.map(String), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    p.once('message', () => resolve(p));
    p.once('exit', (c) => reject(new Error(`${script} exited ${c}`)));
  });
}

/** A process's resident set, KB. */
export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}
