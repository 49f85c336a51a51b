package mpecsgostats

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/cstats"
)

// Container metrics (--container-metrics): a measurement kind beside the
// scrape (measure.go), under the same deadline and never waiting for it:
// each scraped container's own resource use, as the source's API tells it
// (docker stats, the task metadata's /task/stats), decoded by cstats, with
// its limits (the container's hard quota and memory limit, else its task's,
// else the host's: never CPU shares). A container reports once, under the
// key of its keyed target with the lowest container port; rates are worked
// out against the previous run's sample of the same container id, kept in
// the state. The other containers of a task with a target (sidecars) are
// measured too, for the OTLP output only (otlp_containers.go). Containers
// that share a network namespace (awsvpc tasks) report the namespace's
// counters, read once, under each of their keys.

// containerStatser is what a source that knows its containers' stats
// implements: one stats answer per container asked and per sidecar of
// their tasks, or why there is none. It asks at most ask.concurrency at
// once, and gives up at ctx's end.
type containerStatser interface {
	containerStats(ctx context.Context, ask statsAsk) statsAnswer
}

// statsAsk is what the meter asks a source.
type statsAsk struct {
	containers  []containerRef
	concurrency int
	prev        map[string]containerState // the last run's, by id: what is known of each container
	host        hostPaths
	now         func() time.Time // the time of counters read from files
	sidecars    bool             // also the sidecars of the containers' tasks
}

// hostPaths are where the host's files are read: a plugin in a container
// sees them only with the host's /proc (pid: host) and cgroup filesystem.
type hostPaths struct {
	proc    string // /proc: the pid files of the containers' processes
	cgroup  string // /sys/fs/cgroup: the limits of cgroup parents
	meminfo string // /proc/meminfo: the host's memory; "" is unknown
}

// defaultHostPaths are the host's own.
func defaultHostPaths() hostPaths {
	return hostPaths{proc: "/proc", cgroup: "/sys/fs/cgroup", meminfo: "/proc/meminfo"}
}

// containerRef is a container of the targets.
type containerRef struct {
	id, name string
	taskARN  string // "" outside a task: it has no sidecars
}

// statsAnswer is a source's answer: the stats of the containers asked, of
// the sidecars of their tasks and of the holders of the network
// namespaces they share, by id.
type statsAnswer struct {
	results  map[string]statsResult
	sidecars []sidecar
	warnings []string // what cost the limits or the sidecars, not the stats: one line each
}

// sidecar is a container of a task with a target that is no target itself
// (not a pause container, not opted out).
type sidecar struct {
	id, name string
	ecsName  string // its name in the task definition
	taskARN  string
	started  int64 // unix seconds, 0 when unknown
}

// statsResult is one container's stats answer, or why there is none, with
// what the source knows of its limits and network.
type statsResult struct {
	stats  *cstats.TaskStat   // a Docker answer has no network_rate_stats
	err    error              // one line, without the container's name
	limits cstats.LimitInputs // what the source knows beside the answer (HostConfig, task metadata, cgroup parent)
	spec   *containerSpec     // to keep for the next run; nil when unknown
	// netOf: the id of the container whose network stands for this one's
	// (the holder of a shared network namespace), "" for its own.
	netOf string
	// net: a holder's counters read now, in place of stats (Docker: the
	// pause container's /proc/<pid>/net/dev).
	net *cstats.Sample
}

// containerMeter is the container measurement of a run: nil without
// --container-metrics, or when the source knows no stats.
type containerMeter struct {
	statser     containerStatser
	concurrency int
	prev        map[string]containerState // the last run's, by container id
	host        hostPaths                 // MemTotal of host.meminfo is read once a run
	now         func() time.Time
	sidecars    bool // an output sends the sidecars' measures (OTLP): the source finds them too
}

// containerResult is one container's measurement.
type containerResult struct {
	id, name string
	key      string // the key of its target with the lowest container port, "" for none
	sidecar  *sidecar
	values   cstats.Values
	limits   cstats.Limits
	// counters: its cumulative counters, the network's being its network
	// namespace's (none when unknown); usage: the memory usage with the
	// page cache, nil when none (OTLP sends both, otlp_containers.go)
	counters cstats.Sample
	usage    *uint64
	err      error
}

// containerMeasurements are the containers measured, in the order of their
// first target, then the sidecars, and what the run learns of them.
type containerMeasurements struct {
	containers []containerResult
	keep       map[string]containerState // what to keep for the next run, by id
	warnings   []string
	errors     int // stats calls that failed
}

// byID is the result of container id, or nil.
func (m *containerMeasurements) byID(id string) *containerResult {
	for i := range m.containers {
		if m.containers[i].id == id {
			return &m.containers[i]
		}
	}
	return nil
}

// measure asks the stats of every container of targets (a bad label's
// too: the container is there) and of the sidecars of their tasks, and
// works out their values. A call that failed costs its container only,
// with a warning naming it; when every call failed the source answers no
// stats at all, which is one warning.
func (cm *containerMeter) measure(ctx context.Context, targets []keyed) containerMeasurements {
	m := containerMeasurements{keep: map[string]containerState{}}
	port := map[string]uint16{}
	var refs []containerRef
	for _, t := range targets {
		c := m.byID(t.ContainerID)
		if c == nil {
			m.containers = append(m.containers, containerResult{id: t.ContainerID, name: t.ContainerName})
			refs = append(refs, containerRef{id: t.ContainerID, name: t.ContainerName, taskARN: t.TaskARN})
			c = &m.containers[len(m.containers)-1]
		}
		if t.key == "" || t.bad != nil {
			continue
		}
		if p, ok := port[t.ContainerID]; !ok || t.PrivatePort < p {
			port[t.ContainerID], c.key = t.PrivatePort, t.key
		}
	}
	if len(m.containers) == 0 {
		return m
	}
	var hostMemory uint64
	if cm.host.meminfo != "" {
		hostMemory, _ = cstats.ReadMemTotal(cm.host.meminfo) // unknown: only Unlimited is no limit
	}
	now := cm.now
	if now == nil {
		now = time.Now
	}
	ans := cm.statser.containerStats(ctx, statsAsk{containers: refs, concurrency: cm.concurrency, prev: cm.prev, host: cm.host, now: now, sidecars: cm.sidecars})
	m.warnings = append(m.warnings, ans.warnings...)
	for i := range ans.sidecars {
		if m.byID(ans.sidecars[i].id) == nil {
			m.containers = append(m.containers, containerResult{id: ans.sidecars[i].id, name: ans.sidecars[i].name, sidecar: &ans.sidecars[i]})
		}
	}

	// every answer's values and sample, holders' too
	vals := map[string]cstats.Values{}
	for _, id := range slices.Sorted(maps.Keys(ans.results)) {
		a := ans.results[id]
		prev, seen := cm.prev[id]
		switch {
		case a.net != nil:
			vals[id] = cstats.Between(prev.Sample, *a.net)
			m.keep[id] = containerState{Sample: *a.net}
		case a.err == nil && a.stats != nil:
			var p *cstats.Sample
			if seen {
				p = &prev.Sample
			}
			if v, cur, ok := cstats.TaskValues(p, a.stats); ok {
				vals[id] = v
				m.keep[id] = containerState{Sample: cur, Spec: a.spec}
			}
		case a.err != nil && m.byID(id) == nil && !seen:
			// a holder whose counters cannot be read: said once, kept as seen
			m.warnings = append(m.warnings, fmt.Sprintf("no container network of the containers in the network namespace of container %s: %v", shortID(id), a.err))
			m.keep[id] = containerState{}
		}
		if _, ok := m.keep[id]; !ok && (seen || a.spec != nil) {
			spec := a.spec
			if spec == nil {
				spec = prev.Spec // a failed call keeps what the inspect told
			}
			m.keep[id] = containerState{Sample: prev.Sample, Spec: spec}
		}
	}

	var failed []string
	for i := range m.containers {
		c := &m.containers[i]
		a, ok := ans.results[c.id]
		switch {
		case !ok:
			a.err = fmt.Errorf("no stats")
		case a.err == nil && a.stats == nil:
			a.err = fmt.Errorf("no stats: null")
		}
		if a.err == nil {
			if v, ok := vals[c.id]; ok {
				c.values, c.counters = v, m.keep[c.id].Sample
				if u := a.stats.MemoryStats.Usage; u > 0 {
					c.usage = &u
				}
				if a.netOf != "" {
					hv := vals[a.netOf] // none when the holder's counters are unknown
					c.values.NetRx, c.values.NetTx = hv.NetRx, hv.NetTx
					c.counters.NetRx, c.counters.NetTx = nil, nil
					if _, ok := vals[a.netOf]; ok { // read this run
						h := m.keep[a.netOf]
						c.counters.NetRx, c.counters.NetTx = h.NetRx, h.NetTx
					}
				}
				in := a.limits
				s := cstats.StatsLimitInputs(&a.stats.StatsResponse)
				in.OnlineCPUs, in.HierarchicalMemoryLimit, in.HostMemory = s.OnlineCPUs, s.HierarchicalMemoryLimit, hostMemory
				c.limits = cstats.ResolveLimits(in)
			} else {
				a.err = fmt.Errorf("no stats: the answer is no sample (not running?)")
			}
		}
		if a.err != nil {
			c.err = a.err
			m.errors++
			failed = append(failed, fmt.Sprintf("container metrics of container %s %s: %v", c.name, shortID(c.id), a.err))
		}
	}
	if len(failed) > 1 && len(failed) == len(m.containers) {
		m.warnings = append(m.warnings, fmt.Sprintf("no container metrics: the stats of all %d containers failed, first %s", len(failed), failed[0]))
	} else {
		m.warnings = append(m.warnings, failed...)
	}
	return m
}

// containerSamples are what to keep for the next run: this run's, and the
// last run's of a container listed this run whose call failed.
func containerSamples(m containerMeasurements, prev map[string]containerState) map[string]containerState {
	next := map[string]containerState{}
	for id, s := range m.keep {
		next[id] = s
	}
	for _, c := range m.containers {
		if _, ok := next[c.id]; !ok {
			if s, ok := prev[c.id]; ok {
				next[c.id] = s
			}
		}
	}
	if len(next) == 0 {
		return nil
	}
	return next
}

// containerGraphDefs are the container graphs, after the runtime's.
var containerGraphDefs = []struct{ name, label, unit string }{
	{"container_cpu", "Container CPU", "percentage"},
	{"container_memory", "Container Memory", "bytes"},
	{"container_network", "Container Network", "bytes/sec"},
	{"container_disk", "Container Disk", "bytes/sec"},
}

// containerMetricDefs are the container metrics, in the order printed,
// with their values: false when absent.
var containerMetricDefs = []struct {
	graph, name, label string
	value              func(c *containerResult) (float64, bool)
}{
	{"container_cpu", "usage", "Usage", func(c *containerResult) (float64, bool) { return f64(c.values.CPU) }},
	{"container_cpu", "limit", "Limit", func(c *containerResult) (float64, bool) { return f64(c.limits.CPU) }},
	{"container_memory", "usage", "Usage", func(c *containerResult) (float64, bool) { return u64(c.values.Memory) }},
	{"container_memory", "limit", "Limit", func(c *containerResult) (float64, bool) { return u64(c.limits.Memory) }},
	{"container_network", "rx_bytes", "Received", func(c *containerResult) (float64, bool) { return f64(c.values.NetRx) }},
	{"container_network", "tx_bytes", "Sent", func(c *containerResult) (float64, bool) { return f64(c.values.NetTx) }},
	{"container_disk", "read_bytes", "Read", func(c *containerResult) (float64, bool) { return f64(c.values.DiskRead) }},
	{"container_disk", "write_bytes", "Written", func(c *containerResult) (float64, bool) { return f64(c.values.DiskWrite) }},
}

func f64(p *float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return *p, true
}

func u64(p *uint64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return float64(*p), true
}

// isContainerGraph tells a container graph's name.
func isContainerGraph(name string) bool {
	return slices.ContainsFunc(containerGraphDefs, func(g struct{ name, label, unit string }) bool { return g.name == name })
}

// containerLines are the metric lines of the keyed containers, of the
// graphs in only.
func containerLines(prefix string, m containerMeasurements, only graphSet, ts int64) []metricLine {
	var lines []metricLine
	for i := range m.containers {
		c := &m.containers[i]
		if c.key == "" || c.err != nil {
			continue
		}
		for _, d := range containerMetricDefs {
			if !only.has(d.graph) {
				continue
			}
			if v, ok := d.value(c); ok {
				lines = append(lines, metricLine{key: prefix + "." + c.key + "." + d.graph + "." + d.name, value: v, time: ts})
			}
		}
	}
	return lines
}

// containerGraphDefinitions are the meta mode graphs of the container
// metrics in only, "<prefix>.#.<graph>" as the runtime's.
func containerGraphDefinitions(prefix string, only graphSet) map[string]graph {
	graphs := map[string]graph{}
	for _, g := range containerGraphDefs {
		if !only.has(g.name) {
			continue
		}
		var ms []graphMetric
		for _, m := range containerMetricDefs {
			if m.graph == g.name {
				ms = append(ms, graphMetric{Name: m.name, Label: m.label})
			}
		}
		graphs[prefix+".#."+g.name] = graph{Label: title(prefix) + " " + g.label, Unit: g.unit, Metrics: ms}
	}
	return graphs
}
