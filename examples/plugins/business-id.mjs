// DeepFlow's second plugin case: a bank's gRPC calls carry their trace id as a protobuf field,
//   message OrderRequest { string business_id = 1235; }   message OrderResponse { string msg = 1235; }
// Without a schema flowtap's dump keys fields by number ("1235"); with --proto-dir, by name.
//   flowtap read capture.pcap --plugin examples/plugins/business-id.mjs
const field = (message, name) => {
  if (!message || typeof message !== 'object') return undefined;
  const v = message[name] ?? message['1235'];
  return typeof v === 'string' ? v : undefined;
};

export default {
  name: 'business-id',
  hooks: {
    grpc(r) {
      const id = field(r.request.message, 'business_id');
      const msg = field(r.response?.message, 'msg');
      if (id === undefined && msg === undefined) return;
      const attributes = {};
      if (id !== undefined) attributes.business_id = id;
      if (msg !== undefined) attributes.msg = msg;
      return id === undefined ? { attributes } : { traceId: id, attributes };
    },
  },
};
