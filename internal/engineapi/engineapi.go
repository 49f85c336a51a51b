// Package engineapi holds the Docker Engine API's answers the plugin
// decodes: GET /containers/json, /info, /containers/{id}/json and
// /containers/{id}/stats (also the entries of the ECS task metadata
// endpoint's /task/stats, which are Docker's stats). Each type has only the
// fields the plugin reads, under the names of the Engine API reference and
// of Docker's own types (github.com/docker/docker/api/types), so a run
// decodes only what it uses and links none of Docker's packages, whose
// dependencies (image digests, swarm, units) cost every run's start.
package engineapi

import "time"

// Summary is an entry of GET /containers/json.
type Summary struct {
	ID         string `json:"Id"`
	Names      []string
	Image      string
	Created    int64 // Unix time
	Ports      []Port
	Labels     map[string]string
	HostConfig struct {
		NetworkMode string // container:<id> for a container in another's network namespace
	}
	NetworkSettings *NetworkSettingsSummary
}

// Port is a port of a container, published (PublicPort) or not.
type Port struct {
	IP          string // the host address of the binding
	PrivatePort uint16
	PublicPort  uint16
	Type        string // tcp, udp or sctp
}

// NetworkSettingsSummary is the networks of a listed container.
type NetworkSettingsSummary struct {
	Networks map[string]*EndpointSettings
}

// EndpointSettings is a container's place on one network.
type EndpointSettings struct {
	IPAddress string
}

// Info is the answer of GET /info.
type Info struct {
	Name string // the daemon host's name
}

// InspectResponse is the answer of GET /containers/{id}/json.
type InspectResponse struct {
	State      *State
	HostConfig *HostConfig
	Config     *Config
}

// State is an inspected container's state.
type State struct {
	Pid int
}

// Config is an inspected container's configuration.
type Config struct {
	Env []string
}

// HostConfig is an inspected container's host configuration: its network
// mode and resource limits.
type HostConfig struct {
	NetworkMode  string
	CgroupParent string
	NanoCPUs     int64 `json:"NanoCpus"`
	CPUQuota     int64 `json:"CpuQuota"`
	CPUPeriod    int64 `json:"CpuPeriod"` // µs
	Memory       int64 // bytes
}

// StatsResponse is the answer of GET /containers/{id}/stats.
type StatsResponse struct {
	Read        time.Time               `json:"read"`
	PreRead     time.Time               `json:"preread"`
	CPUStats    CPUStats                `json:"cpu_stats"`
	PreCPUStats CPUStats                `json:"precpu_stats"`
	MemoryStats MemoryStats             `json:"memory_stats"`
	Networks    map[string]NetworkStats `json:"networks,omitempty"`
	BlkioStats  BlkioStats              `json:"blkio_stats"`
}

// CPUStats is a container's CPU usage and the host's online CPUs.
type CPUStats struct {
	CPUUsage   CPUUsage `json:"cpu_usage"`
	OnlineCPUs uint32   `json:"online_cpus,omitempty"`
}

// CPUUsage is a container's CPU time in ns.
type CPUUsage struct {
	TotalUsage        uint64 `json:"total_usage"`
	UsageInKernelmode uint64 `json:"usage_in_kernelmode"`
	UsageInUsermode   uint64 `json:"usage_in_usermode"`
}

// MemoryStats is a container's memory usage and its cgroup's counters
// (memory.stat) by name.
type MemoryStats struct {
	Usage uint64            `json:"usage,omitempty"`
	Stats map[string]uint64 `json:"stats,omitempty"`
}

// NetworkStats is the counters of one interface.
type NetworkStats struct {
	RxBytes uint64 `json:"rx_bytes"`
	TxBytes uint64 `json:"tx_bytes"`
}

// BlkioStats is a container's block I/O.
type BlkioStats struct {
	IoServiceBytesRecursive []BlkioStatEntry `json:"io_service_bytes_recursive"`
}

// BlkioStatEntry is one counter of one device.
type BlkioStatEntry struct {
	Op    string `json:"op"`
	Value uint64 `json:"value"`
}
