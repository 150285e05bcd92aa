// DeepFlow's first plugin case: an API that answers HTTP 200 with {"OPT_STATUS":"AUTH_HEADER_ERROR","DESCRIPTION":"..."}.
// Such an answer is a server error whatever its HTTP status says.
//   flowtap read capture.pcap --plugin examples/plugins/opt-status.mjs
/** @param {{ response: { body?: string, bodyEncoding?: string } | null, code: number | null }} r */
function check(r) {
  const body = r.response?.body;
  if (!body || r.response.bodyEncoding || r.code === null || r.code >= 400) return;
  // Most answers are not of this API: a substring scan is far cheaper than parsing every body.
  if (!body.includes('"OPT_STATUS"')) return;
  let json;
  try { json = JSON.parse(body); } catch { return; }
  if (!json || typeof json.OPT_STATUS !== 'string' || json.OPT_STATUS === 'SUCCESS') return;
  return {
    code: 500, status: 'server_error',
    error: typeof json.DESCRIPTION === 'string' ? json.DESCRIPTION : json.OPT_STATUS,
    attributes: { op_stat: json.OPT_STATUS },
  };
}

export default { name: 'opt-status', hooks: { http1: check, http2: check } };
