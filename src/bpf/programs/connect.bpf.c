// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * flowtap's local-client interception (cgroup hooks).
 *
 * connect4/connect6: a TCP connect() to a mapped port is sent to the proxy on loopback instead; the original
 * destination is remembered by socket cookie. Processes listed in `excluded_pids` (the proxy itself, so its
 * upstream connection to the original port is not looped back) are never redirected.
 * sockops: once the redirected connection is established, its original destination is re-keyed by the pair
 * (client port, proxy port), which is what the proxy's accepted socket can see.
 * getsockopt: the proxy asks getsockopt(SOL_IP / SOL_IPV6, SO_ORIGINAL_DST) as it would after an iptables
 * REDIRECT, and gets the original destination from that map. Anything else (and sockets we did not
 * redirect) keeps the kernel's own answer, so iptables REDIRECT still works beside this.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10
#define SOL_IP 0
#define SOL_IPV6 41
#define SO_ORIGINAL_DST 80

/* optlen and retval are separate 4-byte context fields: keep clang from merging the two stores into one
 * 8-byte store, which the verifier rejects. */
#define ctx_store(field, v) (*(volatile __s32 *)&(field) = (v))

struct orig_dst {
	__u32 ip6[4];   /* IPv6 address, or the IPv4 address in ip6[0] */
	__u16 port;     /* network order */
	__u16 family;
};

struct conn_key {
	__u16 client_port; /* host order */
	__u16 proxy_port;  /* host order */
};

/* original port -> proxy port (host order) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u16);
} port_map SEC(".maps");

/* process ids (tgid) whose connections are never redirected */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} excluded_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct orig_dst);
} by_cookie SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct orig_dst);
} by_conn SEC(".maps");

/* counters: [0] redirected, [1] excluded, [2] SO_ORIGINAL_DST answered. */
#include "counters.bpf.h"

/* The proxy port for this connect, or 0 to leave it alone. */
static __always_inline __u16 proxy_for(struct bpf_sock_addr *ctx)
{
	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	__u16 *proxy = bpf_map_lookup_elem(&port_map, &port);
	if (!proxy)
		return 0;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (bpf_map_lookup_elem(&excluded_pids, &pid)) {
		count(1);
		return 0;
	}
	return *proxy;
}

SEC("cgroup/connect4")
int flowtap_connect4(struct bpf_sock_addr *ctx)
{
	__u16 proxy = proxy_for(ctx);
	if (!proxy)
		return 1;
	struct orig_dst d = {};
	d.ip6[0] = ctx->user_ip4;
	d.port = (__u16)ctx->user_port;
	d.family = AF_INET;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	bpf_map_update_elem(&by_cookie, &cookie, &d, BPF_ANY);
	ctx->user_ip4 = bpf_htonl(0x7f000001); /* 127.0.0.1 */
	ctx->user_port = bpf_htons(proxy);
	count(0);
	return 1;
}

SEC("cgroup/connect6")
int flowtap_connect6(struct bpf_sock_addr *ctx)
{
	__u16 proxy = proxy_for(ctx);
	if (!proxy)
		return 1;
	struct orig_dst d = {};
	d.ip6[0] = ctx->user_ip6[0];
	d.ip6[1] = ctx->user_ip6[1];
	d.ip6[2] = ctx->user_ip6[2];
	d.ip6[3] = ctx->user_ip6[3];
	d.port = (__u16)ctx->user_port;
	d.family = AF_INET6;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	bpf_map_update_elem(&by_cookie, &cookie, &d, BPF_ANY);
	ctx->user_ip6[0] = 0;
	ctx->user_ip6[1] = 0;
	ctx->user_ip6[2] = 0;
	ctx->user_ip6[3] = bpf_htonl(1); /* ::1 */
	ctx->user_port = bpf_htons(proxy);
	count(0);
	return 1;
}

SEC("sockops")
int flowtap_sockops(struct bpf_sock_ops *skops)
{
	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		return 1;
	__u64 cookie = bpf_get_socket_cookie(skops);
	struct orig_dst *d = bpf_map_lookup_elem(&by_cookie, &cookie);
	if (!d)
		return 1;
	struct conn_key k = {};
	k.client_port = (__u16)skops->local_port;
	k.proxy_port = (__u16)bpf_ntohl(skops->remote_port);
	bpf_map_update_elem(&by_conn, &k, d, BPF_ANY);
	bpf_map_delete_elem(&by_cookie, &cookie);
	return 1;
}

SEC("cgroup/getsockopt")
int flowtap_getsockopt(struct bpf_sockopt *ctx)
{
	if (ctx->optname != SO_ORIGINAL_DST || (ctx->level != SOL_IP && ctx->level != SOL_IPV6))
		return 1;
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return 1;
	struct conn_key k = {};
	k.client_port = bpf_ntohs((__u16)sk->dst_port);
	k.proxy_port = (__u16)sk->src_port;
	struct orig_dst *d = bpf_map_lookup_elem(&by_conn, &k);
	if (!d)
		return 1;
	if (d->family == AF_INET && ctx->level == SOL_IP) {
		struct sockaddr_in *sa = ctx->optval;
		if ((void *)(sa + 1) > ctx->optval_end)
			return 1;
		sa->sin_family = AF_INET;
		sa->sin_port = d->port;
		sa->sin_addr.s_addr = d->ip6[0];
		ctx_store(ctx->optlen, sizeof(*sa));
		ctx_store(ctx->retval, 0);
		count(2);
	} else if (d->family == AF_INET6 && ctx->level == SOL_IPV6) {
		struct sockaddr_in6 *sa = ctx->optval;
		if ((void *)(sa + 1) > ctx->optval_end)
			return 1;
		sa->sin6_family = AF_INET6;
		sa->sin6_port = d->port;
		sa->sin6_flowinfo = 0;
		sa->sin6_addr.in6_u.u6_addr32[0] = d->ip6[0];
		sa->sin6_addr.in6_u.u6_addr32[1] = d->ip6[1];
		sa->sin6_addr.in6_u.u6_addr32[2] = d->ip6[2];
		sa->sin6_addr.in6_u.u6_addr32[3] = d->ip6[3];
		sa->sin6_scope_id = 0;
		ctx_store(ctx->optlen, sizeof(*sa));
		ctx_store(ctx->retval, 0);
		count(2);
	}
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
