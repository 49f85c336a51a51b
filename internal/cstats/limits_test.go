package cstats

import "testing"

func TestCPULimit(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   LimitInputs
		want float64 // 0: none
	}{
		{"nothing known", LimitInputs{}, 0},
		{"online CPUs", LimitInputs{OnlineCPUs: 4}, 400},
		// --cpus 1.5: 1.5e9 / 1e9 × 100
		{"NanoCpus", LimitInputs{NanoCPUs: 1.5e9, CPUQuota: 1000, TaskCPUs: 4, OnlineCPUs: 8}, 150},
		// 50000 / 100000 × 100
		{"CpuQuota", LimitInputs{CPUQuota: 50000, CPUPeriod: 100000, TaskCPUs: 4, OnlineCPUs: 8}, 50},
		// 30000 / 20000 × 100
		{"CpuQuota over its own period", LimitInputs{CPUQuota: 30000, CPUPeriod: 20000}, 150},
		// no period: the kernel's 100000; 25000 / 100000 × 100
		{"CpuQuota without a period", LimitInputs{CPUQuota: 25000}, 25},
		{"quota -1 is none", LimitInputs{CPUQuota: -1, CPUPeriod: 100000, OnlineCPUs: 2}, 200},
		// task Limits.CPU 0.25 vCPU × 100, before the parent's cgroup
		{"task's", LimitInputs{TaskCPUs: 0.25, Parent: CgroupLimits{CPUQuota: 200000, CPUPeriod: 100000}, OnlineCPUs: 2}, 25},
		// parent's 200000 / 100000 × 100
		{"parent's", LimitInputs{Parent: CgroupLimits{CPUQuota: 200000, CPUPeriod: 100000}, OnlineCPUs: 4}, 200},
		{"parent's max", LimitInputs{Parent: CgroupLimits{CPUQuota: -1, CPUPeriod: 100000}, OnlineCPUs: 4}, 400},
	} {
		got, ok := CPULimit(tt.in)
		if ok != (tt.want != 0) || got != tt.want {
			t.Errorf("%s: CPULimit = %v, %v; want %v", tt.name, got, ok, tt.want)
		}
		l := ResolveLimits(tt.in)
		if tt.want == 0 {
			absent(t, tt.name+": Limits.CPU", l.CPU)
		} else {
			approx(t, tt.name+": Limits.CPU", l.CPU, tt.want)
		}
	}
}

func TestMemoryLimit(t *testing.T) {
	const host = 8 << 30       // 8 GiB
	const unset = 1<<63 - 4096 // cgroup v1's "no limit", Fargate's too
	for _, tt := range []struct {
		name string
		in   LimitInputs
		want uint64 // 0: none
	}{
		{"nothing known", LimitInputs{HostMemory: host}, 0},
		{"HostConfig.Memory", LimitInputs{Memory: 128 << 20, MemoryMiB: 256, TaskMemoryMiB: 512, HostMemory: host}, 128 << 20},
		// Limits.Memory 256 MiB = 268435456
		{"container Limits.Memory", LimitInputs{MemoryMiB: 256, TaskMemoryMiB: 512, HierarchicalMemoryLimit: 1 << 30, HostMemory: host}, 268435456},
		// task Limits.Memory 512 MiB = 536870912
		{"task Limits.Memory", LimitInputs{TaskMemoryMiB: 512, HierarchicalMemoryLimit: 1 << 30, Parent: CgroupLimits{Memory: 2 << 30}, HostMemory: host}, 536870912},
		{"hierarchical_memory_limit", LimitInputs{HierarchicalMemoryLimit: 1 << 30, Parent: CgroupLimits{Memory: 2 << 30}, HostMemory: host}, 1 << 30},
		{"parent's", LimitInputs{HierarchicalMemoryLimit: unset, Parent: CgroupLimits{Memory: 2 << 30}, HostMemory: host}, 2 << 30},
		// the container's own is at least the host's: the task's is taken
		{"container's ≥ host", LimitInputs{Memory: host, TaskMemoryMiB: 1024, HostMemory: host}, 1 << 30},
		{"container's just under host", LimitInputs{Memory: host - 1, TaskMemoryMiB: 1024, HostMemory: host}, host - 1},
		{"2^63 − 4096", LimitInputs{Memory: unset, HierarchicalMemoryLimit: unset}, 0},
		{"2^62", LimitInputs{Memory: 1 << 62}, 0},
		{"just under 2^62, host unknown", LimitInputs{Memory: 1<<62 - 1}, 1<<62 - 1},
		{"MiB overflowing", LimitInputs{MemoryMiB: 1 << 44, TaskMemoryMiB: 64}, 64 << 20},
		{"all over the host", LimitInputs{Memory: 16 << 30, MemoryMiB: 16384, TaskMemoryMiB: 8192, HierarchicalMemoryLimit: unset, Parent: CgroupLimits{Memory: 9 << 30}, HostMemory: host}, 0},
	} {
		got, ok := MemoryLimit(tt.in)
		if ok != (tt.want != 0) || got != tt.want {
			t.Errorf("%s: MemoryLimit = %v, %v; want %v", tt.name, got, ok, tt.want)
		}
		l := ResolveLimits(tt.in)
		if tt.want == 0 {
			absent(t, tt.name+": Limits.Memory", l.Memory)
		} else {
			equal(t, tt.name+": Limits.Memory", l.Memory, tt.want)
		}
	}
}

func TestStatsLimitInputs(t *testing.T) {
	s := readDocker(t, "docker_cgroup_parent_2.json")
	in := StatsLimitInputs(&s)
	// online_cpus 2; hierarchical_memory_limit 268435456 (the parent's)
	if in != (LimitInputs{OnlineCPUs: 2, HierarchicalMemoryLimit: 268435456}) {
		t.Errorf("StatsLimitInputs = %+v", in)
	}
	if StatsLimitInputs(nil) != (LimitInputs{}) {
		t.Error("StatsLimitInputs(nil) is not empty")
	}
}
