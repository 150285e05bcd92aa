// A private protocol as a plugin: "acme-kv", one command per line.
//   request:  GET <key>\n | SET <key> <value>\n        response: OK [<value>]\n | ERR <message>\n
// Answers come in request order. Decoder written to flowtap's decoder contract (whole messages, errors as
// values, resync after a gap or a bad line).
//   flowtap read capture.pcap --plugin examples/plugins/acme-kv.mjs
const MAX_LINE = 64 * 1024;

function decoder(side, { onMessage, onError }) {
  let parts = [];
  let partBytes = 0;
  let start = Infinity;
  let skipping = false; // after a gap or an over-long line: drop bytes up to the next newline
  let closed = false;
  let badRun = false; // inside a run of lines that are not acme-kv: reported once, at its first line
  const fail = (code, reason, time) => {
    onError?.({ code, reason, startTime: start === Infinity ? time : start, endTime: time, size: partBytes });
    parts = []; partBytes = 0; start = Infinity; skipping = true;
  };
  const line = (bytes, time) => {
    const text = bytes.toString('utf8').replace(/\r$/, '');
    const [verb, ...rest] = text.split(' ');
    const ok = side === 'client' ? verb === 'GET' || verb === 'SET' : verb === 'OK' || verb === 'ERR';
    if (!ok) {
      if (!badRun) onError?.({ code: 'bad_line', reason: `not an acme-kv ${side === 'client' ? 'command' : 'answer'}: ${JSON.stringify(text.slice(0, 40))}`, startTime: start, endTime: time, size: bytes.length + 1 });
      badRun = true;
      return;
    }
    badRun = false;
    onMessage({ verb, key: side === 'client' ? rest[0] ?? '' : undefined, value: side === 'client' ? rest.slice(1).join(' ') : rest.join(' '),
      size: bytes.length + 1, startTime: start, endTime: time });
  };
  return {
    get messageStart() { return start; },
    write(chunk, time = Date.now()) {
      if (closed) return;
      let at = 0;
      while (at < chunk.length) {
        const nl = chunk.indexOf(10, at);
        if (skipping) { if (nl < 0) return; skipping = false; at = nl + 1; continue; }
        if (start === Infinity) start = time;
        if (nl < 0) {
          parts.push(Buffer.from(chunk.subarray(at))); partBytes += chunk.length - at;
          if (partBytes > MAX_LINE) fail('too_long', `a line over ${MAX_LINE} bytes`, time);
          return;
        }
        const piece = chunk.subarray(at, nl);
        const whole = parts.length ? Buffer.concat([...parts, piece]) : Buffer.from(piece);
        parts = []; partBytes = 0;
        line(whole, time);
        start = Infinity;
        at = nl + 1;
      }
    },
    gap(length, time = Date.now()) { if (!closed && length > 0 && !skipping) fail('gap', `${length} bytes missing from the capture`, time); },
    end(time = Date.now()) { if (!closed && partBytes > 0) fail('truncated', 'the stream ended inside a line', time); },
    close() { closed = true; parts = []; },
  };
}

export default {
  name: 'acme-kv',
  protocols: [{
    name: 'acme-kv',
    // Strict, because plugins are asked first: "GET key" has one space, an HTTP request line has two.
    classify(first) {
      const s = Buffer.from(first).toString('latin1');
      const nl = s.indexOf('\n');
      if (nl < 0) return s.length < 64 && /^(G(E(T( [^ \r]*)?)?)?|S(E(T( .*)?)?)?|O(K( .*)?)?|E(R(R( .*)?)?)?)$/.test(s) ? undefined : null;
      const line = s.slice(0, nl).replace(/\r$/, '');
      if (/^GET [^ ]+$/.test(line) || /^SET [^ ]+ .*$/.test(line)) return 'request';
      if (/^OK( .*)?$/.test(line) || /^ERR .+$/.test(line)) return 'response';
      return null;
    },
    decoder,
    pairing: 'order',
    record(req, res) {
      const failed = res?.verb === 'ERR';
      return {
        endpoint: req ? `${req.verb} ${req.key}` : '',
        status: res ? (failed ? 'server_error' : 'ok') : undefined,
        error: failed ? res.value : null,
        request: req ? { command: req.verb, key: req.key, value: req.value || null } : {},
        response: res ? { answer: res.verb, value: res.value || null } : null,
      };
    },
  }],
};
