package mpecsgostats

// The OTLP output: each target of a run as one OpenTelemetry resource (the
// task's identity, otlpIdentity) with its Go runtime series (otlpMetrics),
// sent over OTLP/gRPC in as few gzip-compressed export requests as fit under
// otlpMaxRequestBytes each. docs/otlp.md is the user-facing description; its
// mapping table is otlpMetrics in prose (otlp_test.go checks they agree).

import (
	"context"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlpexport"
	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/slim/otlp/resource/v1"
)

const (
	// otlpMaxRequestBytes bounds one export request, uncompressed (what a
	// receiver checks against its limit after gzip): Mackerel refuses
	// requests over 4 MB.
	otlpMaxRequestBytes = otlpexport.DefaultMaxRequestBytes
	// otlpScopeName is the instrumentation scope of every series sent.
	otlpScopeName = "github.com/ecs-gostats/mackerel-plugin-ecs-gostats"
	// otlpUpMetric is the per-target gauge: 1 when the target answered this
	// run, 0 when it did not (then it is the target's only series).
	otlpUpMetric = "ecs_gostats.up"
)

// otlpKind is how a series is sent.
type otlpKind int

const (
	// otlpGauge: a Gauge, the value now.
	otlpGauge otlpKind = iota
	// otlpCounter: a cumulative monotonic Sum from the container's start
	// (an OpenTelemetry Counter).
	otlpCounter
	// otlpUpDown: a cumulative non-monotonic Sum from the container's start
	// (an OpenTelemetry UpDownCounter: what the semantic conventions make
	// go.goroutine.count and go.memory.used, and what OpenTelemetry's own
	// Go runtime instrumentation sends for them).
	otlpUpDown
)

func (k otlpKind) String() string {
	switch k {
	case otlpGauge:
		return "Gauge"
	case otlpCounter:
		return "Sum (cumulative, monotonic)"
	case otlpUpDown:
		return "Sum (cumulative, non-monotonic)"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// otlpMetric is one series of a target: name, unit and kind, with where its
// value comes from.
type otlpMetric struct {
	name  string
	unit  string // UCUM
	kind  otlpKind
	attrs [][2]string // data point attributes, key and value
	// keys: the value is the first of these the target's values have,
	// times scale (0 means 1); derive, when set, computes it instead.
	keys   []string
	scale  float64
	derive func(values map[string]float64) (float64, bool)
	double bool // sent as a double; else as an integer
	desc   string
}

// otlpMetrics maps what the formats parse to OTLP series, in the order sent.
// Names are the OpenTelemetry semantic conventions' for Go runtime metrics
// where one means exactly the same value, else under ecs_gostats. Two values
// of a run are not sent: gc.gc_per_second and gc.gc_pause_per_second are
// rates over the previous request to the handler (by anyone) or, for expvar,
// over the plugin's previous run; the cumulative go.memory.gc.cycles and
// ecs_gostats.gc.pause.time they come from are sent instead, and the
// receiving end takes rates of those.
var otlpMetrics = []otlpMetric{
	{name: "go.goroutine.count", unit: "{goroutine}", kind: otlpUpDown, keys: []string{"runtime.goroutine_num"},
		desc: "Count of live goroutines."},
	{name: "go.memory.used", unit: "By", kind: otlpUpDown, attrs: [][2]string{{"go.memory.type", "stack"}},
		keys: []string{"memory.memory_stack"},
		desc: "Memory used by the Go runtime: stack spans (MemStats.StackInuse)."},
	{name: "go.memory.used", unit: "By", kind: otlpUpDown, attrs: [][2]string{{"go.memory.type", "other"}},
		derive: otlpMemoryOther,
		desc:   "Memory used by the Go runtime, less stacks: Sys - HeapReleased - StackInuse, sent when all three are known."},
	{name: "go.memory.allocated", unit: "By", kind: otlpCounter, keys: []string{"allocation.memory_total_alloc"},
		desc: "Memory allocated to the heap by the application (MemStats.TotalAlloc)."},
	{name: "go.memory.allocations", unit: "{allocation}", kind: otlpCounter, keys: []string{"operation.memory_mallocs"},
		desc: "Count of allocations to the heap by the application (MemStats.Mallocs)."},
	{name: "go.memory.gc.cycles", unit: "{gc_cycle}", kind: otlpCounter, keys: []string{"gc.gc_num", "gc._num_gc"},
		desc: "Number of completed GC cycles (MemStats.NumGC)."},
	{name: "ecs_gostats.gc.pause.time", unit: "s", kind: otlpCounter, keys: []string{"gc._pause_total_ns"}, scale: 1e-9, double: true,
		desc: "Total time the world was stopped for GC (MemStats.PauseTotalNs); expvar targets only."},
	{name: "ecs_gostats.memory.sys", unit: "By", kind: otlpGauge, keys: []string{"memory.memory_sys"},
		desc: "Bytes of memory obtained from the OS (MemStats.Sys)."},
	{name: "ecs_gostats.memory.alloc", unit: "By", kind: otlpGauge, keys: []string{"memory.memory_alloc"},
		desc: "Bytes of allocated heap objects (MemStats.Alloc)."},
	{name: "ecs_gostats.memory.frees", unit: "{free}", kind: otlpCounter, keys: []string{"operation.memory_frees"},
		desc: "Count of heap objects freed (MemStats.Frees)."},
	{name: "ecs_gostats.memory.lookups", unit: "{lookup}", kind: otlpCounter, keys: []string{"operation.memory_lookups"},
		desc: "Count of pointer lookups by the runtime (MemStats.Lookups)."},
	{name: "ecs_gostats.heap.sys", unit: "By", kind: otlpGauge, keys: []string{"heap.heap_sys"},
		desc: "Bytes of heap memory obtained from the OS (MemStats.HeapSys)."},
	{name: "ecs_gostats.heap.idle", unit: "By", kind: otlpGauge, keys: []string{"heap.heap_idle"},
		desc: "Bytes in idle (unused) heap spans (MemStats.HeapIdle)."},
	{name: "ecs_gostats.heap.inuse", unit: "By", kind: otlpGauge, keys: []string{"heap.heap_inuse"},
		desc: "Bytes in in-use heap spans (MemStats.HeapInuse)."},
	{name: "ecs_gostats.heap.released", unit: "By", kind: otlpGauge, keys: []string{"heap.heap_released"},
		desc: "Bytes of physical memory returned to the OS (MemStats.HeapReleased)."},
	{name: "ecs_gostats.heap.objects", unit: "{object}", kind: otlpGauge, keys: []string{"objects.heap_objects"},
		desc: "Number of allocated heap objects (MemStats.HeapObjects)."},
	{name: "ecs_gostats.cgo.calls", unit: "{call}", kind: otlpCounter, keys: []string{"runtime.cgo_call_num"},
		desc: "Count of cgo calls made by the process (runtime.NumCgoCall)."},
}

// otlpUp is the row of otlpUpMetric, sent for every target.
var otlpUp = otlpMetric{name: otlpUpMetric, unit: "1", kind: otlpGauge,
	desc: "1 when the target answered this run with values, 0 when it failed (then its only series)."}

// otlpMemoryOther is go.memory.used{go.memory.type=other}: the semantic
// conventions' total (/memory/classes/total - /memory/classes/heap/released,
// that is Sys - HeapReleased) less the stack part.
func otlpMemoryOther(v map[string]float64) (float64, bool) {
	sys, ok1 := v["memory.memory_sys"]
	released, ok2 := v["heap.heap_released"]
	stack, ok3 := v["memory.memory_stack"]
	if !ok1 || !ok2 || !ok3 || sys-released-stack < 0 {
		return 0, false
	}
	return sys - released - stack, true
}

// value is the row's value for a target's values.
func (m otlpMetric) value(values map[string]float64) (float64, bool) {
	if m.derive != nil {
		return m.derive(values)
	}
	for _, k := range m.keys {
		if v, ok := values[k]; ok {
			if m.scale != 0 {
				v *= m.scale
			}
			return v, true
		}
	}
	return 0, false
}

// otlpTarget is one target of a run as the OTLP output sends it.
type otlpTarget struct {
	resource []*commonpb.KeyValue // the resource attributes: otlpIdentity.attributes()
	up       bool                 // answered this run
	values   map[string]float64   // what the target's format parsed, "<graph>.<metric>"; counters cumulative
	start    time.Time            // the container's start: start time of the cumulative sums; zero if unknown
}

// otlpIdentity is what a target's resource attributes are made of; every
// field may be empty.
type otlpIdentity struct {
	Family        string // task definition family
	Revision      string // task definition revision
	TaskARN       string // arn:aws:ecs:REGION:ACCOUNT:task/[CLUSTER/]ID
	TaskID        string // used when TaskARN is empty
	Cluster       string // cluster name or ARN
	LaunchType    string // EC2, FARGATE (any case)
	ContainerName string // the container's name in the task definition
	ContainerID   string // the Docker container id
	ContainerPort int    // the stats port inside the container; 0 if none
	HostName      string // the container instance's host name
}

// otlpARN is a parsed ARN: arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE.
type otlpARN struct{ partition, service, region, account, resource string }

func otlpParseARN(s string) (otlpARN, bool) {
	f := strings.SplitN(s, ":", 6)
	if len(f) != 6 || f[0] != "arn" || f[1] == "" || f[2] == "" || f[3] == "" || f[4] == "" || f[5] == "" {
		return otlpARN{}, false
	}
	return otlpARN{partition: f[1], service: f[2], region: f[3], account: f[4], resource: f[5]}, true
}

// attributes are the resource attributes of the identity, in a fixed order,
// those with an empty value left out:
//   - service.name: the family, else the container name
//   - service.instance.id: "<task id>/<container name>:<container port>",
//     unique per target (the container id stands for a missing task id)
//   - aws.ecs.*, container.*, cloud.* (region and account from the task ARN;
//     a cluster name becomes the cluster's ARN in the task's region and
//     account), host.name.
func (id otlpIdentity) attributes() []*commonpb.KeyValue {
	arn, arnOK := otlpParseARN(id.TaskARN)
	if arnOK && (arn.service != "ecs" || !strings.HasPrefix(arn.resource, "task/")) {
		arnOK = false
	}
	taskID := id.TaskID
	if arnOK {
		taskID = arn.resource[strings.LastIndexByte(arn.resource, '/')+1:]
	}
	taskARN, clusterARN := "", ""
	if arnOK {
		taskARN = id.TaskARN
	}
	if _, ok := otlpParseARN(id.Cluster); ok {
		clusterARN = id.Cluster
	} else if id.Cluster != "" && arnOK {
		clusterARN = "arn:" + arn.partition + ":ecs:" + arn.region + ":" + arn.account + ":cluster/" + id.Cluster
	}
	service := id.Family
	if service == "" {
		service = id.ContainerName
	}
	instance := taskID
	if instance == "" {
		instance = id.ContainerID
	}
	if instance != "" || id.ContainerName != "" {
		instance += "/" + id.ContainerName
		if id.ContainerPort > 0 {
			instance += ":" + strconv.Itoa(id.ContainerPort)
		}
	}
	region, account, provider, platform := "", "", "", ""
	if arnOK {
		region, account = arn.region, arn.account
	}
	if arnOK || id.Cluster != "" || id.LaunchType != "" || id.Family != "" {
		provider, platform = "aws", "aws_ecs"
	}
	kv := []struct{ k, v string }{
		{"service.name", service},
		{"service.instance.id", instance},
		{"cloud.provider", provider},
		{"cloud.platform", platform},
		{"cloud.region", region},
		{"cloud.account.id", account},
		{"aws.ecs.cluster.arn", clusterARN},
		{"aws.ecs.task.arn", taskARN},
		{"aws.ecs.task.id", taskID},
		{"aws.ecs.task.family", id.Family},
		{"aws.ecs.task.revision", id.Revision},
		{"aws.ecs.launchtype", strings.ToLower(id.LaunchType)},
		{"container.name", id.ContainerName},
		{"container.id", id.ContainerID},
		{"host.name", id.HostName},
	}
	attrs := make([]*commonpb.KeyValue, 0, len(kv))
	for _, a := range kv {
		if a.v != "" {
			attrs = append(attrs, otlpString(a.k, a.v))
		}
	}
	return attrs
}

func otlpString(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// resourceMetrics is one target's resource with its series at now: the up
// gauge, and the values of otlpMetrics the target has when it answered.
func (t otlpTarget) resourceMetrics(now time.Time, scope *commonpb.InstrumentationScope) *metricspb.ResourceMetrics {
	ts := uint64(now.UnixNano())
	var start uint64
	if !t.start.IsZero() && t.start.Before(now) {
		start = uint64(t.start.UnixNano())
	}
	up := 0.0
	if t.up {
		up = 1
	}
	metrics := []*metricspb.Metric{otlpUp.metric(otlpUp.point(up, nil, 0, ts))}
	if t.up {
		byName := map[string]*metricspb.Metric{}
		for _, m := range otlpMetrics {
			v, ok := m.value(t.values)
			if !ok {
				continue
			}
			p := m.point(v, m.attrs, start, ts)
			if p == nil {
				continue
			}
			if prev := byName[m.name]; prev != nil {
				switch d := prev.Data.(type) {
				case *metricspb.Metric_Gauge:
					d.Gauge.DataPoints = append(d.Gauge.DataPoints, p)
				case *metricspb.Metric_Sum:
					d.Sum.DataPoints = append(d.Sum.DataPoints, p)
				}
				continue
			}
			byName[m.name] = m.metric(p)
			metrics = append(metrics, byName[m.name])
		}
	}
	return &metricspb.ResourceMetrics{
		Resource:     &resourcepb.Resource{Attributes: t.resource},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Scope: scope, Metrics: metrics}},
	}
}

// point is one data point of the row, nil for a value an integer row cannot
// carry. start is left out of gauges.
func (m otlpMetric) point(v float64, attrs [][2]string, start, ts uint64) *metricspb.NumberDataPoint {
	p := &metricspb.NumberDataPoint{TimeUnixNano: ts}
	if m.kind != otlpGauge {
		p.StartTimeUnixNano = start
	}
	for _, a := range attrs {
		p.Attributes = append(p.Attributes, otlpString(a[0], a[1]))
	}
	switch {
	case m.double:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		p.Value = &metricspb.NumberDataPoint_AsDouble{AsDouble: v}
	default:
		// float64(math.MaxInt64) rounds up to 2^63, which int64 cannot hold
		if math.IsNaN(v) || v < math.MinInt64 || v >= math.MaxInt64 {
			return nil
		}
		p.Value = &metricspb.NumberDataPoint_AsInt{AsInt: int64(math.Round(v))}
	}
	return p
}

// metric is the row's Metric holding the point p.
func (m otlpMetric) metric(p *metricspb.NumberDataPoint) *metricspb.Metric {
	// no Description: docs/otlp.md has them, and they would be repeated for
	// every target in every request
	out := &metricspb.Metric{Name: m.name, Unit: m.unit}
	points := []*metricspb.NumberDataPoint{p}
	switch m.kind {
	case otlpGauge:
		out.Data = &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: points}}
	default:
		out.Data = &metricspb.Metric_Sum{Sum: &metricspb.Sum{
			DataPoints:             points,
			AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE,
			IsMonotonic:            m.kind == otlpCounter,
		}}
	}
	return out
}

// otlpRequests is the targets' resources at now in the export requests a
// send makes of them (otlpexport.Requests).
func otlpRequests(targets []otlpTarget, now time.Time, scope *commonpb.InstrumentationScope, limit int) []*colmetricspb.ExportMetricsServiceRequest {
	return otlpexport.Requests(otlpResources(targets, now, scope), limit)
}

// otlpResources are the targets' resources at now, in order.
func otlpResources(targets []otlpTarget, now time.Time, scope *commonpb.InstrumentationScope) []*metricspb.ResourceMetrics {
	resources := make([]*metricspb.ResourceMetrics, 0, len(targets))
	for _, t := range targets {
		resources = append(resources, t.resourceMetrics(now, scope))
	}
	return resources
}

// otlpExporter sends a run's targets to one OTLP/gRPC endpoint
// (otlpexport.Exporter), over connections of its own for each send.
type otlpExporter struct {
	endpoint string        // host:port
	insecure bool          // plain text; else TLS, verified against the system roots
	apiKey   string        // sent as Mackerel-Api-Key when set
	timeout  time.Duration // for the whole send; 0 means only ctx's deadline
	version  string        // the plugin's, in the user agent and the scope

	// for tests
	maxRequestBytes int          // 0 means otlpMaxRequestBytes
	httpClient      *http.Client // nil means the send's own
}

// send exports the targets at now. The error, one line, names the endpoint
// and never the API key; requests that were accepted before or after a
// failed one are counted in the result.
func (e *otlpExporter) send(ctx context.Context, targets []otlpTarget, now time.Time) (otlpexport.Result, error) {
	if len(targets) == 0 {
		return otlpexport.Result{}, nil
	}
	if e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	limit := e.maxRequestBytes
	if limit <= 0 {
		limit = otlpMaxRequestBytes
	}
	scope := &commonpb.InstrumentationScope{Name: otlpScopeName, Version: e.version}
	x := &otlpexport.Exporter{Endpoint: e.endpoint, Insecure: e.insecure, APIKey: e.apiKey,
		UserAgent: "mackerel-plugin-ecs-gostats/" + e.version, MaxRequestBytes: limit, HTTPClient: e.httpClient}
	return x.Send(ctx, otlpResources(targets, now, scope))
}

// otlpOutput is the OTLP output of a run: every scraped target, keyed or
// not, as its own resource.
type otlpOutput struct {
	exporter *otlpExporter
	hostName string // the instance's, for targets found through Docker
}

func newOTLPOutput(opts options, version string) otlpOutput {
	var hostName string
	if opts.Source == sourceDocker {
		hostName, _ = os.Hostname()
	}
	return otlpOutput{hostName: hostName, exporter: &otlpExporter{endpoint: opts.OTLPEndpoint, insecure: opts.OTLPInsecure,
		apiKey: opts.apiKey, version: version}}
}

// write sends r's targets; it returns how many export requests failed and
// the warnings to print (the send's error, a partial success), never the
// key.
func (o otlpOutput) write(ctx context.Context, r *report) (failed int, warnings []string) {
	targets := make([]otlpTarget, 0, len(r.results))
	for _, res := range r.results {
		t := res.target
		id := otlpIdentity{Family: t.Family, Revision: t.Revision, TaskARN: t.TaskARN, TaskID: t.TaskID, Cluster: t.Cluster,
			LaunchType: t.LaunchType, ContainerName: t.ECSContainer, ContainerID: t.ContainerID, ContainerPort: int(t.PrivatePort)}
		if id.ContainerName == "" {
			id.ContainerName = t.ContainerName
		}
		if !t.fromTaskMetadata {
			id.HostName = o.hostName
		}
		ot := otlpTarget{resource: id.attributes(), up: res.cause == nil, values: res.values}
		if t.Started > 0 {
			ot.start = time.Unix(t.Started, 0)
		}
		targets = append(targets, ot)
	}
	res, err := o.exporter.send(ctx, targets, r.time)
	warnings = res.Warnings
	if err != nil {
		warnings = append(warnings, err.Error())
		failed = res.Failed
	}
	return failed, warnings
}
