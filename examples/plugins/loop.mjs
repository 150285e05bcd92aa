// A plugin with a bug: its hook never returns. Run it only isolated, to see the host replace its worker:
//   flowtap read capture.pcap --plugin-worker examples/plugins/loop.mjs
export default { name: 'loop', hooks: { any() { for (;;) { /* stuck */ } } } };
