package cstats

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"
)

// TaskStats is an answer of the task metadata endpoint's /task/stats: each
// container's Docker stats by Docker id. An entry is nil for `null`, and
// has no read time for `{}` (SampleOf tells both): either costs only its
// container.
type TaskStats map[string]*TaskStat

// TaskStat is one container's entry of /task/stats: Docker's stats with the
// network rates the ECS agent adds.
type TaskStat struct {
	engineapi.StatsResponse
	NetworkRateStats *NetworkRateStats `json:"network_rate_stats,omitempty"`
}

// NetworkRateStats are the network rates the ECS agent works out, in bytes
// per second, summed over the interfaces.
type NetworkRateStats struct {
	RxBytesPerSec *float64 `json:"rx_bytes_per_sec,omitempty"`
	TxBytesPerSec *float64 `json:"tx_bytes_per_sec,omitempty"`
}

// DecodeTaskStats decodes an answer of /task/stats.
func DecodeTaskStats(r io.Reader) (TaskStats, error) {
	var ts TaskStats
	if err := json.NewDecoder(r).Decode(&ts); err != nil {
		return nil, fmt.Errorf("decoding task stats: %v", err)
	}
	if ts == nil {
		return nil, fmt.Errorf("decoding task stats: null instead of an object")
	}
	return ts, nil
}

// PreCPU is the CPU of one stats answer from cpu_stats − precpu_stats over
// read − preread (the ECS agent fills both; Docker's one-shot answer does
// not): only the CPU fields of Values are set, and none when the answer has
// no earlier sample, its times do not advance or are over MaxGap apart, or
// a counter went down.
func PreCPU(s *engineapi.StatsResponse) Values {
	if s == nil || s.PreRead.IsZero() || s.Read.IsZero() {
		return Values{}
	}
	pre, cur := s.PreCPUStats.CPUUsage, s.CPUStats.CPUUsage
	if pre.TotalUsage == 0 {
		return Values{}
	}
	v := Between(
		Sample{Read: s.PreRead, CPU: &pre.TotalUsage, CPUUser: &pre.UsageInUsermode, CPUSystem: &pre.UsageInKernelmode},
		Sample{Read: s.Read, CPU: &cur.TotalUsage, CPUUser: &cur.UsageInUsermode, CPUSystem: &cur.UsageInKernelmode},
	)
	return v
}

// TaskValues is the values of one entry e of /task/stats, with prev the
// previous run's Sample of the same container (or nil), and the Sample to
// keep for the next run; ok is false when e is no sample (null or {}).
// The CPU comes from e alone (PreCPU), or between prev and e when e has no
// precpu_stats; the network from network_rate_stats where present, else
// between prev and e; the disk between prev and e.
//
// In an awsvpc task every container's entry carries the task's ENI: see
// TaskNetwork.
func TaskValues(prev *Sample, e *TaskStat) (v Values, cur Sample, ok bool) {
	if e == nil {
		return Values{}, Sample{}, false
	}
	v, cur, ok = DockerValues(prev, &e.StatsResponse)
	if !ok {
		return Values{}, Sample{}, false
	}
	if pre := PreCPU(&e.StatsResponse); pre.CPU != nil {
		v.CPU, v.CPUUser, v.CPUSystem = pre.CPU, pre.CPUUser, pre.CPUSystem
	}
	if r := e.NetworkRateStats; r != nil && (r.RxBytesPerSec != nil || r.TxBytesPerSec != nil) {
		v.NetRx, v.NetTx = r.RxBytesPerSec, r.TxBytesPerSec
	}
	return v, cur, true
}

// TaskNetwork is the network of a task whose containers share one network
// namespace (awsvpc, which every Fargate task is): the ENI's counters are
// repeated in each container's entry, each read at its own time, so they
// are the task's and count once. It takes them from the entry with the
// smallest Docker id among those carrying networks or network_rate_stats
// (the same entry from run to run, whose Sample prev keeps: prev may be
// nil), and returns that id, or "" when no entry carries any, as on EC2
// where the ENI is CNI's and Docker does not see it (see ReadNetDev).
func TaskNetwork(ts TaskStats, prev map[string]Sample) (id string, rx, tx *float64) {
	ids := make([]string, 0, len(ts))
	for k, e := range ts {
		if e == nil || (len(e.Networks) == 0 && e.NetworkRateStats == nil) {
			continue
		}
		if _, ok := SampleOf(&e.StatsResponse); ok {
			ids = append(ids, k)
		}
	}
	if len(ids) == 0 {
		return "", nil, nil
	}
	id = slices.Min(ids)
	var p *Sample
	if s, ok := prev[id]; ok {
		p = &s
	}
	v, _, _ := TaskValues(p, ts[id])
	return id, v.NetRx, v.NetTx
}
