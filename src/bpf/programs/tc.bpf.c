// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * flowtap's remote-client interception (tcx or clsact on one interface).
 *
 * ingress: a SYN (without ACK) to a mapped port starts a tracked flow, keyed by the client's address and port;
 * that packet and every later packet of the flow get the proxy port as destination. Packets of flows that
 * were not redirected at their SYN are never touched, so a mapping added mid-connection breaks nothing and
 * a mapping removed keeps redirected connections whole while new ones go direct.
 * egress: replies from the proxy port to a tracked client get the original port back as source.
 * Checksums are fixed with bpf_l4_csum_replace (ports are not in the pseudo-header). IPv4 with options
 * (the TCP header is found from IHL) and IPv6 whose next header is TCP.
 * A flow is forgotten when either side resets it (after rewriting the RST) or when a new SYN reuses its
 * client port; closed-by-FIN flows age out of the LRU map, which keeps active flows (every packet is a use).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/pkt_cls.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct flow_key {
	__u32 addr[4];  /* the client's address (IPv4 in addr[0]) */
	__u32 local[4]; /* the address it connected to: one client port may be used towards several */
	__u16 port;     /* the client's port, network order */
	__u16 family;
};

struct flow {
	__u16 original; /* network order */
	__u16 proxy;    /* network order */
};

/* original port -> proxy port (host order) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u16);
} tc_port_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow);
} flows SEC(".maps");

/* counters: [0] flows started, [1] packets rewritten in, [2] packets rewritten out */
#include "counters.bpf.h"

/* Find the TCP header; fill the flow key (the peer is the source at ingress, the destination at egress). Returns its offset or -1. */
static __always_inline int parse(struct __sk_buff *skb, struct flow_key *k, int ingress)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP)
			return -1;
		if (ip->frag_off & bpf_htons(0x1fff)) /* not the first fragment: no TCP header here */
			return -1;
		int ihl = ip->ihl * 4;
		if (ihl < (int)sizeof(*ip))
			return -1;
		k->family = 4;
		k->addr[0] = ingress ? ip->saddr : ip->daddr;
		k->local[0] = ingress ? ip->daddr : ip->saddr;
		return sizeof(*eth) + ihl;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return -1;
		k->family = 6;
		__builtin_memcpy(k->addr, ingress ? ip6->saddr.in6_u.u6_addr32 : ip6->daddr.in6_u.u6_addr32, 16);
		__builtin_memcpy(k->local, ingress ? ip6->daddr.in6_u.u6_addr32 : ip6->saddr.in6_u.u6_addr32, 16);
		return sizeof(*eth) + sizeof(*ip6);
	}
	return -1;
}

/* Replace the 16-bit port at `at` (offset of source or dest in the TCP header) and fix the checksum. */
static __always_inline void set_port(struct __sk_buff *skb, int tcp, int at, __u16 from, __u16 to)
{
	bpf_l4_csum_replace(skb, tcp + offsetof(struct tcphdr, check), from, to, sizeof(__u16));
	bpf_skb_store_bytes(skb, tcp + at, &to, sizeof(to), 0);
}

SEC("tc")
int flowtap_tc_ingress(struct __sk_buff *skb)
{
	struct flow_key k = {};
	int tcp = parse(skb, &k, 1);
	if (tcp < 0)
		return TC_ACT_OK;
	struct tcphdr th;
	if (bpf_skb_load_bytes(skb, tcp, &th, sizeof(th)) < 0)
		return TC_ACT_OK;
	k.port = th.source;
	if (th.syn && !th.ack) {
		__u16 port = bpf_ntohs(th.dest);
		__u16 *proxy = bpf_map_lookup_elem(&tc_port_map, &port);
		if (!proxy) {
			bpf_map_delete_elem(&flows, &k); /* a new connection reusing the client port: not ours */
			return TC_ACT_OK;
		}
		struct flow f = { .original = th.dest, .proxy = bpf_htons(*proxy) };
		bpf_map_update_elem(&flows, &k, &f, BPF_ANY);
		count(0);
		set_port(skb, tcp, offsetof(struct tcphdr, dest), f.original, f.proxy);
		count(1);
		return TC_ACT_OK;
	}
	struct flow *f = bpf_map_lookup_elem(&flows, &k);
	if (!f || f->original != th.dest)
		return TC_ACT_OK;
	set_port(skb, tcp, offsetof(struct tcphdr, dest), f->original, f->proxy);
	count(1);
	if (th.rst)
		bpf_map_delete_elem(&flows, &k);
	return TC_ACT_OK;
}

SEC("tc")
int flowtap_tc_egress(struct __sk_buff *skb)
{
	struct flow_key k = {};
	int tcp = parse(skb, &k, 0);
	if (tcp < 0)
		return TC_ACT_OK;
	struct tcphdr th;
	if (bpf_skb_load_bytes(skb, tcp, &th, sizeof(th)) < 0)
		return TC_ACT_OK;
	k.port = th.dest;
	struct flow *f = bpf_map_lookup_elem(&flows, &k);
	if (!f || f->proxy != th.source)
		return TC_ACT_OK;
	set_port(skb, tcp, offsetof(struct tcphdr, source), f->proxy, f->original);
	count(2);
	if (th.rst)
		bpf_map_delete_elem(&flows, &k);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
