// Package cstats turns the Docker stats of a container (from the Docker
// Engine API, or from the ECS task metadata endpoint's /task/stats) into the
// values of the plugin's container graphs: CPU in percent of one vCPU, the
// memory working set in bytes, and network and disk rates in bytes per
// second, with the CPU and memory limits to draw beside them.
//
// A value a sample lacks is absent (a nil pointer), never zero. The package
// does no I/O of its own but reading the files it is given (ReadNetDev,
// ReadMemTotal, ReadCgroupLimits): the caller asks Docker and the metadata
// endpoint, and keeps each container's previous Sample in its state.
//
// With Docker, per container id:
//
//	body, _ := dc.ContainerStatsOneShot(ctx, id) // GET /v1.41 + StatsPath(id)
//	s, err := DecodeDockerStats(body)
//	v, cur, ok := DockerValues(prev, &s) // prev: the last run's Sample of id, or nil; keep cur
//	in := StatsLimitInputs(&s)                      // online CPUs, v1 hierarchical limit
//	in.NanoCPUs, in.CPUQuota, in.CPUPeriod, in.Memory = hc.NanoCPUs, hc.CPUQuota, hc.CPUPeriod, uint64(hc.Memory)
//	in.Parent, _ = ReadCgroupLimits("/sys/fs/cgroup", hc.CgroupParent) // when set (ECS: /ecs/<task id>)
//	in.HostMemory, _ = ReadMemTotal("/proc/meminfo")
//	limits := ResolveLimits(in)
//
// With the task metadata endpoint, DecodeTaskStats of /task/stats, then
// TaskValues per entry (null and {} entries are no sample), LimitInputs
// from the /task answer (task Limits.CPU and Limits.Memory, each
// container's Limits.Memory, never its Limits.CPU), and for awsvpc tasks
// TaskNetwork once per task in place of each container's network. An
// awsvpc task on EC2 shows no network at all: ReadNetDev of the pause
// container's /proc/<pid>/net/dev has it.
package cstats

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"
)

// StatsQuery is the query of the Docker stats request: one sample, at once
// (one-shot needs API version 1.41 or later; without it Docker waits a
// second more to fill precpu_stats, which the values here do not use).
const StatsQuery = "stream=false&one-shot=true"

// MinAPIVersion is the oldest Docker API version that knows one-shot.
const MinAPIVersion = "1.41"

// MaxGap is the longest time between two samples that still gives rates: over
// it the previous sample is too old to say anything about this run.
const MaxGap = 10 * time.Minute

// StatsPath is the path and query of the Docker stats request of container
// id, to put after the API version prefix (/v1.41).
func StatsPath(id string) string {
	return "/containers/" + url.PathEscape(id) + "/stats?" + StatsQuery
}

// Sample is what one stats answer of a container holds that is needed to
// work out rates against the next run's answer: its read time and its
// cumulative counters. The caller keeps it (JSON) in its state file, under
// the container id. Counters the answer lacks are nil.
type Sample struct {
	Read time.Time `json:"t"`
	// CPU time in ns: total, user mode, kernel mode.
	CPU       *uint64 `json:"c,omitempty"`
	CPUUser   *uint64 `json:"cu,omitempty"`
	CPUSystem *uint64 `json:"cs,omitempty"`
	// Bytes received and sent, summed over the interfaces.
	NetRx *uint64 `json:"rx,omitempty"`
	NetTx *uint64 `json:"tx,omitempty"`
	// Bytes read and written, summed over the block devices.
	DiskRead  *uint64 `json:"dr,omitempty"`
	DiskWrite *uint64 `json:"dw,omitempty"`
}

// Values are a container's values for its graphs; nil is absent.
type Values struct {
	// CPU used in percent, 100 being one vCPU fully busy: in all, in user
	// mode and in kernel mode.
	CPU       *float64
	CPUUser   *float64
	CPUSystem *float64
	// Memory is the working set in bytes, as docker stats shows it.
	Memory *uint64
	// Network bytes received and sent per second.
	NetRx *float64
	NetTx *float64
	// Disk bytes read and written per second.
	DiskRead  *float64
	DiskWrite *float64
}

// DecodeDockerStats decodes one answer of Docker's stats request.
func DecodeDockerStats(r io.Reader) (engineapi.StatsResponse, error) {
	var w statsWire
	if err := json.NewDecoder(r).Decode(&w); err != nil {
		return engineapi.StatsResponse{}, fmt.Errorf("decoding docker stats: %v", err)
	}
	return w.response(), nil
}

// statsWire is a stats answer with three of its memory counters only. The
// rest of memory.stat, some thirty counters a map entry each, is left
// unread: two thirds of the allocations and a third of the time of decoding
// the answer whole, which a run pays per container.
type statsWire struct {
	engineapi.StatsResponse
	MemoryStats struct { // in place of the StatsResponse's
		Usage uint64 `json:"usage"`
		Stats struct {
			TotalInactiveFile       *uint64 `json:"total_inactive_file"`
			InactiveFile            *uint64 `json:"inactive_file"`
			HierarchicalMemoryLimit *uint64 `json:"hierarchical_memory_limit"`
		} `json:"stats"`
	} `json:"memory_stats"`
}

// response is the answer, with the memory counters that were read.
func (w statsWire) response() engineapi.StatsResponse {
	s := w.StatsResponse
	s.MemoryStats.Usage = w.MemoryStats.Usage
	for k, v := range map[string]*uint64{"total_inactive_file": w.MemoryStats.Stats.TotalInactiveFile,
		"inactive_file": w.MemoryStats.Stats.InactiveFile, "hierarchical_memory_limit": w.MemoryStats.Stats.HierarchicalMemoryLimit} {
		if v != nil {
			if s.MemoryStats.Stats == nil {
				s.MemoryStats.Stats = map[string]uint64{}
			}
			s.MemoryStats.Stats[k] = *v
		}
	}
	return s
}

// SampleOf is the Sample of a stats answer; ok is false when the answer is
// no sample: no read time (`{}`, or a container that is not running, which
// Docker answers with read 0001-01-01).
func SampleOf(s *engineapi.StatsResponse) (Sample, bool) {
	if s == nil || s.Read.IsZero() || s.Read.Year() <= 1 {
		return Sample{}, false
	}
	out := Sample{Read: s.Read}
	if u := s.CPUStats.CPUUsage; u.TotalUsage != 0 || u.UsageInUsermode != 0 || u.UsageInKernelmode != 0 {
		out.CPU, out.CPUUser, out.CPUSystem = ptr(u.TotalUsage), ptr(u.UsageInUsermode), ptr(u.UsageInKernelmode)
	}
	if rx, tx, ok := NetworkTotals(s.Networks); ok {
		out.NetRx, out.NetTx = &rx, &tx
	}
	if r, w, ok := DiskTotals(s.BlkioStats); ok {
		out.DiskRead, out.DiskWrite = &r, &w
	}
	return out, true
}

// NetworkTotals sums the bytes received and sent over the interfaces of
// networks; ok is false when there are none (no network namespace of its
// own: --network none, host, or an awsvpc task on EC2).
func NetworkTotals(networks map[string]engineapi.NetworkStats) (rx, tx uint64, ok bool) {
	for _, n := range networks {
		rx += n.RxBytes
		tx += n.TxBytes
	}
	return rx, tx, len(networks) > 0
}

// DiskTotals sums the bytes read and written over the devices of
// io_service_bytes_recursive (ops Read/Write of cgroup v1, read/write of v2);
// ok is false when the answer has no such list (null: a stopped container,
// or no blkio accounting). An empty list is a container that did no I/O.
func DiskTotals(b engineapi.BlkioStats) (read, write uint64, ok bool) {
	for _, e := range b.IoServiceBytesRecursive {
		switch {
		case strings.EqualFold(e.Op, "read"):
			read += e.Value
		case strings.EqualFold(e.Op, "write"):
			write += e.Value
		}
	}
	return read, write, b.IoServiceBytesRecursive != nil
}

// WorkingSet is the memory working set of a stats answer as docker stats
// shows it: usage less the inactive file cache (total_inactive_file on
// cgroup v1, inactive_file on v2), never below 0; ok is false when the
// answer has no memory usage.
func WorkingSet(m engineapi.MemoryStats) (uint64, bool) {
	if m.Usage == 0 && len(m.Stats) == 0 {
		return 0, false
	}
	inactive, v1 := m.Stats["total_inactive_file"]
	if !v1 {
		inactive = m.Stats["inactive_file"]
	}
	if inactive >= m.Usage {
		return 0, true
	}
	return m.Usage - inactive, true
}

// Between is the CPU and the rates from prev to cur, two samples of the same
// container: none when either is no sample, when cur's read time is not
// after prev's or more than MaxGap after it, or when any counter of cur is
// below prev's (the container restarted). A value is there when both
// samples have its counter.
func Between(prev, cur Sample) Values {
	if prev.Read.IsZero() || cur.Read.IsZero() {
		return Values{}
	}
	dt := cur.Read.Sub(prev.Read)
	if dt <= 0 || dt > MaxGap {
		return Values{}
	}
	pairs := [...][2]*uint64{
		{prev.CPU, cur.CPU}, {prev.CPUUser, cur.CPUUser}, {prev.CPUSystem, cur.CPUSystem},
		{prev.NetRx, cur.NetRx}, {prev.NetTx, cur.NetTx},
		{prev.DiskRead, cur.DiskRead}, {prev.DiskWrite, cur.DiskWrite},
	}
	for _, p := range pairs {
		if p[0] != nil && p[1] != nil && *p[1] < *p[0] {
			return Values{}
		}
	}
	ns := float64(dt.Nanoseconds())
	sec := dt.Seconds()
	percent := func(p [2]*uint64) *float64 { return delta(p, ns/100) }
	rate := func(p [2]*uint64) *float64 { return delta(p, sec) }
	return Values{
		CPU: percent(pairs[0]), CPUUser: percent(pairs[1]), CPUSystem: percent(pairs[2]),
		NetRx: rate(pairs[3]), NetTx: rate(pairs[4]),
		DiskRead: rate(pairs[5]), DiskWrite: rate(pairs[6]),
	}
}

// delta is (p[1] − p[0]) / per, or nil when either is nil.
func delta(p [2]*uint64, per float64) *float64 {
	if p[0] == nil || p[1] == nil {
		return nil
	}
	v := float64(*p[1]-*p[0]) / per
	return &v
}

// DockerValues is the values of a Docker stats answer s, with prev the
// previous run's Sample of the same container (nil on the first run: then
// there is only the memory), and the Sample to keep for the next run; ok is
// false when s is no sample (see SampleOf), and then there is nothing.
func DockerValues(prev *Sample, s *engineapi.StatsResponse) (v Values, cur Sample, ok bool) {
	cur, ok = SampleOf(s)
	if !ok {
		return Values{}, Sample{}, false
	}
	if prev != nil {
		v = Between(*prev, cur)
	}
	if m, ok := WorkingSet(s.MemoryStats); ok {
		v.Memory = &m
	}
	return v, cur, true
}

func ptr[T any](v T) *T { return &v }
