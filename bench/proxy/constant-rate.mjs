// A wrk2-style constant-rate load generator (wrk2 is not packaged for Debian): RATE requests a second
// spread over CONNECTIONS keep-alive connections for SECONDS, each connection one request at a time.
// Latency is counted from when a request was due, not when it went out, so a server that stalls is
// charged for the requests it held back (coordinated omission); the generator's own timer lateness is
// taken out. The first half second is a warm-up. Prints one JSON line: sent, answered (both without the
// warm-up), total (with it), p50/p99/p99.9 in ms.
import net from 'node:net';
const [port, rate, connections, seconds] = process.argv.slice(2).map(Number);
const REQUEST = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
const interval = (1000 * connections) / rate;
const now = () => performance.now();
const latencies = [];
let sent = 0;
let answered = 0;
let total = 0; // answers, warm-up included
const t0 = now() + 200;
// The first half second warms up (JIT, connections) and is not counted.
const counted = t0 + 500;
const end = counted + seconds * 1000;

function run(k) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let due = t0 + (k * interval) / connections; // connections staggered over one interval
    let freeAt = 0;
    let sentAt = 0;
    const send = () => {
      if (due >= end) { s.end(); resolve(); return; }
      const t = now();
      if (t < due) { setTimeout(send, due - t); return; }
      sentAt = t;
      if (due >= counted) sent++;
      s.write(REQUEST);
    };
    s.on('data', (d) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        const head = buf.indexOf('\r\n\r\n');
        if (head < 0) return;
        const h = buf.latin1Slice(0, head);
        let next;
        if (/transfer-encoding: *chunked/i.test(h)) {
          const last = buf.indexOf('\r\n0\r\n\r\n', head + 2); // the upstream's bodies never hold this
          if (last < 0) return;
          next = last + 7;
        } else {
          next = head + 4 + Number(/content-length: *(\d+)/i.exec(h)?.[1] ?? 0);
          if (buf.length < next) return;
        }
        buf = buf.subarray(next);
        const t = now();
        // From when it was due, less what this generator's timer added on its own.
        const slop = Math.max(0, sentAt - Math.max(due, freeAt));
        total++;
        if (due >= counted) { answered++; latencies.push(t - due - slop); }
        freeAt = t;
        due += interval;
        send();
      }
    });
    s.on('error', () => resolve());
    s.once('connect', send);
  });
}

await Promise.all(Array.from({ length: connections }, (_, k) => run(k)));
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
process.stdout.write(JSON.stringify({ sent, answered, total, p50: q(0.5), p99: q(0.99), p999: q(0.999) }) + '\n');
