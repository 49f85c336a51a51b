package mpecsgostats

import (
	"context"
	"fmt"
	"slices"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/cstats"
)

// Container metrics (--container-metrics): a measurement kind beside the
// scrape (measure.go), under the same deadline and never waiting for it:
// each scraped container's own resource use, as the source's API tells it
// (docker stats, the task metadata's /task/stats), decoded by cstats. A
// container reports once, under the key of its keyed target with the lowest
// container port; rates are worked out against the previous run's sample of
// the same container id, kept in the state.

// containerStatser is what a source that knows its containers' stats
// implements: one stats answer per container id asked, or why there is
// none. It asks at most concurrency at once, and gives up at ctx's end.
type containerStatser interface {
	containerStats(ctx context.Context, ids []string, concurrency int) map[string]statsResult
}

// statsResult is one container's stats answer, or why there is none.
type statsResult struct {
	stats *cstats.TaskStat // a Docker answer has no network_rate_stats
	err   error            // one line, without the container's name
}

// containerMeter is the container measurement of a run: nil without
// --container-metrics, or when the source knows no stats.
type containerMeter struct {
	statser     containerStatser
	concurrency int
	prev        map[string]cstats.Sample // the last run's samples, by container id
}

// containerResult is one container's measurement.
type containerResult struct {
	id, name string
	key      string // the key of its target with the lowest container port, "" for none
	values   cstats.Values
	limits   cstats.Limits
	sample   *cstats.Sample // to keep for the next run; nil when none
	err      error
}

// containerMeasurements are the containers measured, in the order of their
// first target, and what the run learns of them.
type containerMeasurements struct {
	containers []containerResult
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
// too: the container is there) and works out their values. A call that
// failed costs its container only, with a warning naming it; when every
// call failed the source answers no stats at all, which is one warning.
func (cm *containerMeter) measure(ctx context.Context, targets []keyed) containerMeasurements {
	var m containerMeasurements
	port := map[string]uint16{}
	for _, t := range targets {
		c := m.byID(t.ContainerID)
		if c == nil {
			m.containers = append(m.containers, containerResult{id: t.ContainerID, name: t.ContainerName})
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
	ids := make([]string, len(m.containers))
	for i, c := range m.containers {
		ids[i] = c.id
	}
	answers := cm.statser.containerStats(ctx, ids, cm.concurrency)
	var failed []string
	for i := range m.containers {
		c := &m.containers[i]
		a, ok := answers[c.id]
		switch {
		case !ok:
			a.err = fmt.Errorf("no stats")
		case a.err == nil && a.stats == nil:
			a.err = fmt.Errorf("no stats: null")
		}
		if a.err == nil {
			var prev *cstats.Sample
			if s, ok := cm.prev[c.id]; ok {
				prev = &s
			}
			v, cur, ok := cstats.TaskValues(prev, a.stats)
			if !ok {
				a.err = fmt.Errorf("no stats: the answer is no sample (not running?)")
			} else {
				c.values, c.sample = v, &cur
				c.limits = cstats.ResolveLimits(cstats.StatsLimitInputs(&a.stats.StatsResponse))
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

// containerSamples are the samples to keep for the next run: this run's,
// and the last run's of a container listed this run whose call failed.
func containerSamples(m containerMeasurements, prev map[string]cstats.Sample) map[string]cstats.Sample {
	next := map[string]cstats.Sample{}
	for _, c := range m.containers {
		if c.sample != nil {
			next[c.id] = *c.sample
		} else if s, ok := prev[c.id]; ok {
			next[c.id] = s
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
