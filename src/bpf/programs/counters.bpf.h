/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A small array of u64 counters every flowtap program keeps for stats and tests (read from TypeScript as
 * the map `counters`); each program documents what its slots count.
 */
#ifndef FLOWTAP_COUNTERS_BPF_H
#define FLOWTAP_COUNTERS_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 i)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &i);
	if (c)
		__sync_fetch_and_add(c, 1);
}

#endif
