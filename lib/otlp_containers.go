package mpecsgostats

import (
	"time"

	commonpb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/common/v1"
	metricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/metrics/v1"
	resourcepb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/resource/v1"
)

// The OTLP output's container metrics (--container-metrics): each measured
// container's own use, on the resource of its target with the lowest
// container port, and for the sidecars of a task with a target on a
// resource of their own (service.instance.id <task id>/<container name>).
// Names are the semantic conventions' for containers where one means the
// same value; the limits are under ecs_gostats. They go in the same
// export requests as the targets', after them (otlpOutput.write).

// otlpContainerMetric is one container series.
type otlpContainerMetric struct {
	otlpMetric
	// points: the row's points of a container, each value with its
	// attributes; none when it has no value
	points func(c *containerResult) []otlpContainerPoint
}

type otlpContainerPoint struct {
	v     float64
	attrs [][2]string
}

// otlpContainerMetrics are the container series, in the order sent.
var otlpContainerMetrics = []otlpContainerMetric{
	{otlpMetric{name: "container.cpu.time", unit: "s", kind: otlpCounter, double: true,
		desc: "CPU time used by the container since it started, in user and in kernel mode (cpu.mode user, system)."},
		func(c *containerResult) []otlpContainerPoint {
			return pairOf(c.counters.CPUUser, c.counters.CPUSystem, 1e9, "cpu.mode", "user", "system")
		}},
	{otlpMetric{name: "container.cpu.usage", unit: "{cpu}", kind: otlpGauge, double: true,
		desc: "CPUs used since the previous run, 1.0 being one CPU fully busy (container_cpu.usage / 100)."},
		func(c *containerResult) []otlpContainerPoint { return oneOf(c.values.CPU, 100) }},
	{otlpMetric{name: "container.memory.usage", unit: "By", kind: otlpUpDown,
		desc: "Memory used by the container, page cache included (memory_stats.usage)."},
		func(c *containerResult) []otlpContainerPoint { return oneOf(c.usage, 1) }},
	{otlpMetric{name: "container.memory.working_set", unit: "By", kind: otlpUpDown,
		desc: "The memory working set: usage less the inactive page cache (container_memory.usage)."},
		func(c *containerResult) []otlpContainerPoint { return oneOf(c.values.Memory, 1) }},
	{otlpMetric{name: "container.network.io", unit: "By", kind: otlpCounter,
		desc: "Bytes received and sent over every interface but lo since the network namespace was made (network.io.direction receive, transmit)."},
		func(c *containerResult) []otlpContainerPoint {
			return pairOf(c.counters.NetRx, c.counters.NetTx, 1, "network.io.direction", "receive", "transmit")
		}},
	{otlpMetric{name: "container.disk.io", unit: "By", kind: otlpCounter,
		desc: "Bytes read from and written to block devices since the container started (disk.io.direction read, write)."},
		func(c *containerResult) []otlpContainerPoint {
			return pairOf(c.counters.DiskRead, c.counters.DiskWrite, 1, "disk.io.direction", "read", "write")
		}},
	{otlpMetric{name: "ecs_gostats.container.cpu.limit", unit: "{cpu}", kind: otlpUpDown, double: true,
		desc: "CPUs the container may use: its hard quota, else its task's, else the host's (container_cpu.limit / 100)."},
		func(c *containerResult) []otlpContainerPoint { return oneOf(c.limits.CPU, 100) }},
	{otlpMetric{name: "ecs_gostats.container.memory.limit", unit: "By", kind: otlpUpDown,
		desc: "Memory the container may use: its limit, else its task's; none when unlimited (container_memory.limit)."},
		func(c *containerResult) []otlpContainerPoint { return oneOf(c.limits.Memory, 1) }},
}

// oneOf is the point of *p over per, none when p is nil.
func oneOf[T uint64 | float64](p *T, per float64) []otlpContainerPoint {
	if p == nil {
		return nil
	}
	return []otlpContainerPoint{{v: float64(*p) / per}}
}

// pairOf is the points of *a and *b over per, with attribute key a's and
// b's value, none when either is nil.
func pairOf(a, b *uint64, per float64, key, va, vb string) []otlpContainerPoint {
	if a == nil || b == nil {
		return nil
	}
	return []otlpContainerPoint{
		{v: float64(*a) / per, attrs: [][2]string{{key, va}}},
		{v: float64(*b) / per, attrs: [][2]string{{key, vb}}},
	}
}

// otlpContainerResources are the measured containers of r as OTLP
// resources at r.time: a scraped one with the resource attributes of its
// target with the lowest container port (targets[i] is r.results[i]'s), a
// sidecar with its own, made from a target of its task.
func otlpContainerResources(r *report, targets []otlpTarget, scope *commonpb.InstrumentationScope) []*metricspb.ResourceMetrics {
	if !r.containerMetrics {
		return nil
	}
	lowest := map[string]int{} // container id -> index of its lowest-port result
	byTask := map[string]int{} // task ARN -> index of a result of the task
	for i, res := range r.results {
		if j, ok := lowest[res.target.ContainerID]; !ok || res.target.PrivatePort < r.results[j].target.PrivatePort {
			lowest[res.target.ContainerID] = i
		}
		if _, ok := byTask[res.target.TaskARN]; !ok && res.target.TaskARN != "" {
			byTask[res.target.TaskARN] = i
		}
	}
	var out []*metricspb.ResourceMetrics
	for i := range r.containers.containers {
		c := &r.containers.containers[i]
		if c.err != nil {
			continue
		}
		var attrs []*commonpb.KeyValue
		var start int64
		switch {
		case c.sidecar == nil:
			j, ok := lowest[c.id]
			if !ok || j >= len(targets) {
				continue
			}
			attrs, start = targets[j].resource, r.results[j].target.Started
		default:
			j, ok := byTask[c.sidecar.taskARN]
			if !ok {
				continue
			}
			t := r.results[j].target
			t.ContainerID, t.ContainerName, t.ECSContainer, t.PrivatePort = c.id, c.name, c.sidecar.ecsName, 0
			attrs, start = identityOf(t).attributes(), c.sidecar.started
		}
		if ms := otlpContainerSeries(c, r.time, start); len(ms) > 0 {
			out = append(out, &metricspb.ResourceMetrics{
				Resource:     &resourcepb.Resource{Attributes: attrs},
				ScopeMetrics: []*metricspb.ScopeMetrics{{Scope: scope, Metrics: ms}},
			})
		}
	}
	return out
}

// otlpContainerSeries are the series of container c at now; start (unix
// seconds, 0 unknown) is the start of its cumulative sums.
func otlpContainerSeries(c *containerResult, now time.Time, start int64) []*metricspb.Metric {
	ts := uint64(now.UnixNano())
	var st uint64
	if start > 0 && start < now.Unix() {
		st = uint64(time.Unix(start, 0).UnixNano())
	}
	var ms []*metricspb.Metric
	for _, row := range otlpContainerMetrics {
		var m *metricspb.Metric
		for _, p := range row.points(c) {
			dp := row.point(p.v, p.attrs, st, ts)
			switch {
			case dp == nil:
			case m == nil:
				m = row.metric(dp)
			default:
				if g := m.GetGauge(); g != nil {
					g.DataPoints = append(g.DataPoints, dp)
				} else {
					m.GetSum().DataPoints = append(m.GetSum().DataPoints, dp)
				}
			}
		}
		if m != nil {
			ms = append(ms, m)
		}
	}
	return ms
}
