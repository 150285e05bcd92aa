// Custom masking: card numbers (13-19 digits, spaces or dashes allowed, Luhn-valid) in any captured body
// become "****" plus their last four digits. Runs on records only: the traffic itself is never changed.
//   flowtap dump --listen 8080 --upstream 127.0.0.1:9090 --plugin examples/plugins/mask-cards.mjs
const CARD = /\b\d(?:[ -]?\d){12,18}\b/g;

function luhn(digits) {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
  }
  return sum % 10 === 0;
}

function masked(text) {
  if (typeof text !== 'string') return undefined;
  let hit = false;
  const out = text.replace(CARD, (m) => {
    const digits = m.replace(/[ -]/g, '');
    if (!luhn(digits)) return m;
    hit = true;
    return `****${digits.slice(-4)}`;
  });
  return hit ? out : undefined;
}

export default {
  name: 'mask-cards',
  hooks: {
    any(r) {
      const requestBody = r.request?.bodyEncoding ? undefined : masked(r.request?.body);
      const responseBody = r.response?.bodyEncoding ? undefined : masked(r.response?.body);
      if (requestBody === undefined && responseBody === undefined) return;
      return { requestBody, responseBody, attributes: { masked: 'card' } };
    },
  },
};
