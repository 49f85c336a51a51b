package cstats

import "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"

// Unlimited is the least value that is no limit whatever the host: cgroup v1
// shows an unset memory limit as 2^63 − 4096 (Fargate sends it too), and
// nothing real comes near 2^62.
const Unlimited = uint64(1) << 62

// defaultCFSPeriod is the kernel's CFS period, in µs, which a quota without
// a period of its own counts in.
const defaultCFSPeriod = 100000

// LimitInputs is what is known of a container's and its task's limits, each
// field zero when unknown. CPU shares (an ECS container's `cpu`, and the
// per-container Limits.CPU of task metadata, in the same units) are a
// relative weight, not a limit, and have no field here.
type LimitInputs struct {
	// The container's hard CPU quota: Docker's HostConfig.NanoCpus, or
	// HostConfig.CpuQuota over HostConfig.CpuPeriod (µs; a period of 0 is
	// the kernel's 100000).
	NanoCPUs  int64
	CPUQuota  int64
	CPUPeriod int64
	// The container's memory limit: Docker's HostConfig.Memory in bytes, or
	// the task metadata container's Limits.Memory in MiB.
	Memory    uint64
	MemoryMiB uint64

	// The task's: the task metadata task's Limits.CPU (vCPUs) and
	// Limits.Memory (MiB).
	TaskCPUs      float64
	TaskMemoryMiB uint64
	// The task's, as its cgroup shows it: the limits of the container's
	// cgroup parent (ReadCgroupLimits), and on cgroup v1 the
	// hierarchical_memory_limit of the container's memory stats.
	Parent                  CgroupLimits
	HierarchicalMemoryLimit uint64

	// The host's: online CPUs (cpu_stats.online_cpus) and memory (MemTotal
	// of /proc/meminfo, in bytes: ReadMemTotal).
	OnlineCPUs uint32
	HostMemory uint64
}

// Limits are a container's limits; nil is absent.
type Limits struct {
	// CPU in percent, 100 being one vCPU.
	CPU *float64
	// Memory in bytes.
	Memory *uint64
}

// StatsLimitInputs is the LimitInputs a stats answer tells: the online CPUs
// and, on cgroup v1, the hierarchical memory limit.
func StatsLimitInputs(s *engineapi.StatsResponse) LimitInputs {
	if s == nil {
		return LimitInputs{}
	}
	return LimitInputs{
		OnlineCPUs:              s.CPUStats.OnlineCPUs,
		HierarchicalMemoryLimit: s.MemoryStats.Stats["hierarchical_memory_limit"],
	}
}

// ResolveLimits is CPULimit and MemoryLimit together.
func ResolveLimits(in LimitInputs) Limits {
	var l Limits
	if c, ok := CPULimit(in); ok {
		l.CPU = &c
	}
	if m, ok := MemoryLimit(in); ok {
		l.Memory = &m
	}
	return l
}

// CPULimit is the CPU a container may use, in percent of one vCPU: its own
// hard quota; else its task's (task metadata's Limits.CPU, else the quota of
// its cgroup parent); else all online CPUs. ok is false when none is known.
func CPULimit(in LimitInputs) (float64, bool) {
	switch {
	case in.NanoCPUs > 0:
		return float64(in.NanoCPUs) / 1e9 * 100, true
	case in.CPUQuota > 0:
		return quotaPercent(in.CPUQuota, in.CPUPeriod), true
	case in.TaskCPUs > 0:
		return in.TaskCPUs * 100, true
	case in.Parent.CPUQuota > 0:
		return quotaPercent(in.Parent.CPUQuota, in.Parent.CPUPeriod), true
	case in.OnlineCPUs > 0:
		return float64(in.OnlineCPUs) * 100, true
	}
	return 0, false
}

func quotaPercent(quota, period int64) float64 {
	if period <= 0 {
		period = defaultCFSPeriod
	}
	return float64(quota) / float64(period) * 100
}

// MemoryLimit is the memory a container may use, in bytes: its own limit;
// else its task's (task metadata's Limits.Memory, else cgroup v1's
// hierarchical_memory_limit, else its cgroup parent's limit). A value of at
// least the host's memory or Unlimited is no limit, and the next is taken;
// ok is false when there is none.
func MemoryLimit(in LimitInputs) (uint64, bool) {
	for _, v := range [...]uint64{
		in.Memory, mib(in.MemoryMiB),
		mib(in.TaskMemoryMiB), in.HierarchicalMemoryLimit, in.Parent.Memory,
	} {
		if v > 0 && v < Unlimited && (in.HostMemory == 0 || v < in.HostMemory) {
			return v, true
		}
	}
	return 0, false
}

// mib is n MiB in bytes, or Unlimited when that overflows.
func mib(n uint64) uint64 {
	if n >= Unlimited>>20 {
		return Unlimited
	}
	return n << 20
}
