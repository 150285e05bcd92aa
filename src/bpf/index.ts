/**
 * `flowtap/bpf` — the BPF port interceptor lives here (it loads koffi and libbpf, so it is kept out of
 * the root entry). Not built yet: this entry exists so the subpath is stable from the first release.
 */
export const bpfAvailable = false;
