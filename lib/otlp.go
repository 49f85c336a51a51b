package mpecsgostats

// The OTLP output: each target of a run as one OpenTelemetry resource (the
// task's identity, otlpIdentity) with its Go runtime series (otlpMetrics),
// sent over OTLP/gRPC in as few gzip-compressed export requests as fit under
// otlpMaxRequestBytes each. docs/otlp.md is the user-facing description; its
// mapping table is otlpMetrics in prose (otlp_test.go checks they agree).

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otelenv"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlpexport"
	colmetricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/collector/metrics/v1"
	commonpb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/common/v1"
	metricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/metrics/v1"
	resourcepb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/resource/v1"
)

const (
	// otlpMaxRequestBytes bounds one export request, uncompressed (what a
	// receiver checks against its limit after gzip): Mackerel refuses
	// requests over 4 MB.
	otlpMaxRequestBytes = otlpexport.DefaultMaxRequestBytes
	// otlpScopeName is the instrumentation scope of every series sent.
	otlpScopeName = "github.com/ecs-gostats/mackerel-plugin-ecs-gostats"
	// otlpSchemaURL is the version of the semantic conventions whose names
	// the series and resource attributes follow.
	otlpSchemaURL = "https://opentelemetry.io/schemas/1.44.0"
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
	keys   []metric
	scale  float64
	derive func(v values) (float64, bool)
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
	{name: "go.goroutine.count", unit: "{goroutine}", kind: otlpUpDown, keys: []metric{goroutineNum},
		desc: "Count of live goroutines."},
	{name: "go.memory.used", unit: "By", kind: otlpUpDown, attrs: [][2]string{{"go.memory.type", "stack"}},
		keys: []metric{memoryStack},
		desc: "Memory used by the Go runtime: stack spans (MemStats.StackInuse)."},
	{name: "go.memory.used", unit: "By", kind: otlpUpDown, attrs: [][2]string{{"go.memory.type", "other"}},
		derive: otlpMemoryOther,
		desc:   "Memory used by the Go runtime, less stacks: Sys - HeapReleased - StackInuse, sent when all three are known."},
	{name: "go.memory.allocated", unit: "By", kind: otlpCounter, keys: []metric{memoryTotalAlloc},
		desc: "Memory allocated to the heap by the application (MemStats.TotalAlloc)."},
	{name: "go.memory.allocations", unit: "{allocation}", kind: otlpCounter, keys: []metric{hiddenHeapAllocs},
		desc: "Count of allocations to the heap by the application (/gc/heap/allocs:objects: client_golang's go_gc_heap_allocs_objects_total)."},
	{name: "go.memory.gc.cycles", unit: "{gc_cycle}", kind: otlpCounter, keys: []metric{gcNum, hiddenNumGC},
		desc: "Number of completed GC cycles (MemStats.NumGC)."},
	{name: "go.memory.gc.goal", unit: "By", kind: otlpUpDown, keys: []metric{hiddenGCGoal},
		desc: "Heap size target for the end of the GC cycle (MemStats.NextGC: the handler's gc_next, client_golang's go_memstats_next_gc_bytes)."},
	{name: "go.processor.limit", unit: "{thread}", kind: otlpUpDown, keys: []metric{hiddenMaxProcs},
		desc: "OS threads that can run Go code at once (GOMAXPROCS: the handler's gomaxprocs, client_golang's go_sched_gomaxprocs_threads)."},
	{name: "ecs_gostats.gc.pause.time", unit: "s", kind: otlpCounter, keys: []metric{hiddenPauseTotal}, scale: 1e-9, double: true,
		desc: "Total time the world was stopped for GC (MemStats.PauseTotalNs; client_golang's go_gc_duration_seconds sum); expvar and client_golang targets."},
	{name: "ecs_gostats.memory.sys", unit: "By", kind: otlpGauge, keys: []metric{memorySys},
		desc: "Bytes of memory obtained from the OS (MemStats.Sys)."},
	{name: "ecs_gostats.memory.alloc", unit: "By", kind: otlpGauge, keys: []metric{memoryAlloc},
		desc: "Bytes of allocated heap objects (MemStats.Alloc)."},
	{name: "ecs_gostats.memory.mallocs", unit: "{allocation}", kind: otlpCounter, keys: []metric{memoryMallocs},
		desc: "Count of heap objects allocated, tiny allocations included (MemStats.Mallocs)."},
	{name: "ecs_gostats.memory.frees", unit: "{free}", kind: otlpCounter, keys: []metric{memoryFrees},
		desc: "Count of heap objects freed (MemStats.Frees)."},
	{name: "ecs_gostats.memory.lookups", unit: "{lookup}", kind: otlpCounter, keys: []metric{memoryLookups},
		desc: "Count of pointer lookups by the runtime (MemStats.Lookups)."},
	{name: "ecs_gostats.heap.sys", unit: "By", kind: otlpGauge, keys: []metric{heapSys},
		desc: "Bytes of heap memory obtained from the OS (MemStats.HeapSys)."},
	{name: "ecs_gostats.heap.idle", unit: "By", kind: otlpGauge, keys: []metric{heapIdle},
		desc: "Bytes in idle (unused) heap spans (MemStats.HeapIdle)."},
	{name: "ecs_gostats.heap.inuse", unit: "By", kind: otlpGauge, keys: []metric{heapInuse},
		desc: "Bytes in in-use heap spans (MemStats.HeapInuse)."},
	{name: "ecs_gostats.heap.released", unit: "By", kind: otlpGauge, keys: []metric{heapReleased},
		desc: "Bytes of physical memory returned to the OS (MemStats.HeapReleased)."},
	{name: "ecs_gostats.heap.objects", unit: "{object}", kind: otlpGauge, keys: []metric{heapObjects},
		desc: "Number of allocated heap objects (MemStats.HeapObjects)."},
	{name: "ecs_gostats.cgo.calls", unit: "{call}", kind: otlpCounter, keys: []metric{cgoCallNum},
		desc: "Count of cgo calls made by the process (runtime.NumCgoCall)."},
}

// otlpUp is the row of otlpUpMetric, sent for every target.
var otlpUp = otlpMetric{name: otlpUpMetric, unit: "1", kind: otlpGauge,
	desc: "1 when the target answered this run with values, 0 when it failed (then its only series)."}

// otlpMemoryOther is go.memory.used{go.memory.type=other}: the semantic
// conventions' total (/memory/classes/total - /memory/classes/heap/released,
// that is Sys - HeapReleased) less the stack part.
func otlpMemoryOther(v values) (float64, bool) {
	sys, ok1 := v[memorySys]
	released, ok2 := v[heapReleased]
	stack, ok3 := v[memoryStack]
	if !ok1 || !ok2 || !ok3 || sys-released-stack < 0 {
		return 0, false
	}
	return sys - released - stack, true
}

// value is the row's value for a target's values.
func (m otlpMetric) value(vs values) (float64, bool) {
	if m.derive != nil {
		return m.derive(vs)
	}
	for _, k := range m.keys {
		if v, ok := vs[k]; ok {
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
	values   values               // what the target's format parsed; counters cumulative
	start    time.Time            // the container's start: start time of the cumulative sums; zero if unknown
}

// otlpIdentity is what a target's resource attributes are made of, as its
// source said; every field may be empty.
type otlpIdentity struct {
	Family        string // task definition family
	Revision      string // task definition revision
	TaskARN       string // arn:aws:ecs:REGION:ACCOUNT:task/[CLUSTER/]ID, "" when it is none
	TaskID        string
	ClusterARN    string
	Region        string // of the task ARN
	Account       string // of the task ARN
	LaunchType    string // EC2, FARGATE (any case)
	ContainerName string // the container's name in the task definition
	ContainerID   string // the Docker container id
	ContainerPort int    // the stats port inside the container; 0 if none
	HostName      string // the container instance's host name
	Zone          string // the availability zone
	InstanceARN   string // the ECS container instance's ARN
	Image         string // the container's image: repository[:tag][@digest]
	// Service: service.name, service.namespace and
	// deployment.environment.name (serviceid.go); an empty name is the
	// family's, else the container name's
	Service service
}

// identityOf is the identity of a target.
func identityOf(t target) otlpIdentity {
	id := otlpIdentity{Family: t.Family, Revision: t.Revision, TaskID: t.TaskID, ClusterARN: t.clusterARN(),
		Region: t.ARN.Region, Account: t.ARN.Account, LaunchType: t.LaunchType, ContainerName: t.ECSContainer,
		ContainerID: t.ContainerID, ContainerPort: int(t.PrivatePort), HostName: t.HostName,
		Zone: t.Zone, InstanceARN: t.InstanceARN, Image: t.Image}
	if t.ARN.ID != "" {
		id.TaskARN, id.TaskID = t.TaskARN, t.ARN.ID
	}
	if id.ContainerName == "" {
		id.ContainerName = t.ContainerName
	}
	return id
}

// attributes are the resource attributes of the identity, in a fixed order,
// those with an empty value left out:
//   - service.name: id.Service's, else the family, else the container name;
//     service.namespace, deployment.environment.name: id.Service's
//   - service.instance.id: "<task id>/<container name>:<container port>",
//     unique per target (the container id stands for a missing task id)
//   - aws.ecs.*, container.*, cloud.*, host.name.
func (id otlpIdentity) attributes() []*commonpb.KeyValue {
	service := id.Service.name
	if service == "" {
		service = id.Family
	}
	if service == "" {
		service = id.ContainerName
	}
	imageName, imageTag := splitImage(id.Image)
	instance := id.TaskID
	if instance == "" {
		instance = id.ContainerID
	}
	if instance != "" || id.ContainerName != "" {
		instance += "/" + id.ContainerName
		if id.ContainerPort > 0 {
			instance += ":" + strconv.Itoa(id.ContainerPort)
		}
	}
	provider, platform := "", ""
	if id.TaskARN != "" || id.ClusterARN != "" || id.LaunchType != "" || id.Family != "" {
		provider, platform = "aws", "aws_ecs"
	}
	kv := []struct{ k, v string }{
		{"service.name", service},
		{"service.namespace", id.Service.namespace},
		{"service.instance.id", instance},
		{"deployment.environment.name", id.Service.env},
		{"cloud.provider", provider},
		{"cloud.platform", platform},
		{"cloud.region", id.Region},
		{"cloud.availability_zone", id.Zone},
		{"cloud.account.id", id.Account},
		{"aws.ecs.cluster.arn", id.ClusterARN},
		{"aws.ecs.container.arn", id.InstanceARN},
		{"aws.ecs.task.arn", id.TaskARN},
		{"aws.ecs.task.id", id.TaskID},
		{"aws.ecs.task.family", id.Family},
		{"aws.ecs.task.revision", id.Revision},
		{"aws.ecs.launchtype", strings.ToLower(id.LaunchType)},
		{"container.name", id.ContainerName},
		{"container.id", id.ContainerID},
		{"container.image.name", imageName},
		{"container.image.tags", imageTag},
		{"host.name", id.HostName},
	}
	attrs := make([]*commonpb.KeyValue, 0, len(kv))
	for _, a := range kv {
		switch {
		case a.v == "":
		case a.k == "container.image.tags": // a string array
			attrs = append(attrs, &commonpb.KeyValue{Key: a.k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{
				ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{{Value: &commonpb.AnyValue_StringValue{StringValue: a.v}}}}}}})
		default:
			attrs = append(attrs, otlpString(a.k, a.v))
		}
	}
	return attrs
}

// splitImage splits an image reference, [registry[:port]/]repository[:tag][@digest],
// into its name without tag or digest and its tag ("" for none). An image
// id (sha256:...) has neither.
func splitImage(image string) (name, tag string) {
	if strings.HasPrefix(image, "sha256:") {
		return "", ""
	}
	name, _, _ = strings.Cut(image, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag = name[:i], name[i+1:]
	}
	return name, tag
}

// withEnv is attrs with the plugin's own OTEL_RESOURCE_ATTRIBUTES after
// them: a key attrs has keeps its value, and the plugin's service.name is
// no task's.
func withEnv(attrs []*commonpb.KeyValue, env []*commonpb.KeyValue) []*commonpb.KeyValue {
	if len(env) == 0 {
		return attrs
	}
	have := make(map[string]bool, len(attrs))
	for _, a := range attrs {
		have[a.Key] = true
	}
	for _, e := range env {
		if !have[e.Key] && e.Key != attrServiceName {
			attrs = append(attrs, e)
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
		ScopeMetrics: []*metricspb.ScopeMetrics{{Scope: scope, Metrics: metrics, SchemaUrl: otlpSchemaURL}},
		SchemaUrl:    otlpSchemaURL,
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

// send exports the targets at now, and more resources after them (the
// containers'). The error, one line, names the endpoint and never the API
// key; requests that were accepted before or after a failed one are
// counted in the result.
func (e *otlpExporter) send(ctx context.Context, targets []otlpTarget, now time.Time, more ...*metricspb.ResourceMetrics) (otlpexport.Result, error) {
	if len(targets) == 0 && len(more) == 0 {
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
	return x.Send(ctx, append(otlpResources(targets, now, scope), more...))
}

// envAPIKey is where the Mackerel API key for the OTLP output is read from:
// never a flag, since argv shows in ps.
const envAPIKey = "MACKEREL_APIKEY"

// otlpOutput is the OTLP output of a run (--output otlp): every scraped
// target, keyed or not, as its own resource.
type otlpOutput struct {
	exporter *otlpExporter
	// env: the plugin's own OTEL_RESOURCE_ATTRIBUTES, added to every
	// resource; envErr: it is malformed, ignored whole (a warning)
	env    []*commonpb.KeyValue
	envErr bool
}

// openOTLPOutput checks the OTLP options.
func openOTLPOutput(opts options, version string, _ io.Writer) (output, error) {
	if opts.OTLPEndpoint == "" {
		return nil, fmt.Errorf("--output %s: needs --otlp-endpoint HOST:PORT", opts.Output)
	}
	if otlpexport.CheckEndpoint(opts.OTLPEndpoint) != nil {
		return nil, fmt.Errorf("--otlp-endpoint %q: want HOST:PORT, such as otlp.mackerelio.com:4317", opts.OTLPEndpoint)
	}
	host, _, _ := net.SplitHostPort(opts.OTLPEndpoint)
	if opts.OTLPInsecure && opts.apiKey != "" && !isLoopback(host) {
		return nil, fmt.Errorf("--otlp-insecure: refused while %s is set and %s is not on this host: the key would cross the network in plain text; use TLS, or unset %s for a collector that adds the key itself",
			envAPIKey, host, envAPIKey)
	}
	o := otlpOutput{exporter: &otlpExporter{endpoint: opts.OTLPEndpoint, insecure: opts.OTLPInsecure,
		apiKey: opts.apiKey, version: version}}
	attrs, err := otelenv.ParseResourceAttributes(opts.otelResourceAttrs)
	o.envErr = err != nil
	for _, a := range attrs {
		o.env = append(o.env, otlpString(a.Key, a.Value))
	}
	return o, nil
}

// otlpUnused: the OTLP flags are errors without otlp in --output.
func otlpUnused(opts options) error {
	switch {
	case opts.OTLPEndpoint != "":
		return fmt.Errorf("--otlp-endpoint: only with otlp in --output (e.g. --output mackerel,otlp)")
	case opts.OTLPInsecure:
		return fmt.Errorf("--otlp-insecure: only with otlp in --output")
	}
	return nil
}

// isLoopback tells localhost and loopback IP literals.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

func (otlpOutput) graphs() map[string]graph          { return nil }
func (otlpOutput) labels() bool                      { return true }
func (otlpOutput) needsKey() bool                    { return false }
func (otlpOutput) errorsGraph() (name, label string) { return "otlp", "OTLP" }

// otlpMeasureMax is the most of --timeout discovery and the scrapes get
// with otlp in --output: the push has the rest.
const otlpMeasureMax = 5 * time.Second

// reserve: discovery and the scrapes end at the earlier of three quarters
// of --timeout and otlpMeasureMax; the push has the rest.
func (otlpOutput) reserve(timeout time.Duration) time.Duration {
	return timeout - min(timeout*3/4, otlpMeasureMax)
}

// write sends r's targets; its errors are the export requests that failed,
// its warnings the send's error and partial successes, never the key.
func (o otlpOutput) write(ctx context.Context, r *report) (outcome, error) {
	targets := make([]otlpTarget, 0, len(r.results))
	var warnings []string
	if o.envErr {
		warnings = append(warnings, "the plugin's own "+otelenv.ResourceAttributesVar+" is malformed, ignored whole")
	}
	for _, res := range r.results {
		id := identityOf(res.target)
		id.Service = r.service(res.target)
		ot := otlpTarget{resource: withEnv(id.attributes(), o.env), up: res.cause == nil, values: res.values}
		if res.target.Started > 0 {
			ot.start = time.Unix(res.target.Started, 0)
		}
		targets = append(targets, ot)
	}
	scope := &commonpb.InstrumentationScope{Name: otlpScopeName, Version: o.exporter.version}
	containers := otlpContainerResources(r, targets, scope) // --container-metrics: otlp_containers.go
	res, err := o.exporter.send(ctx, targets, r.time, containers...)
	out := outcome{warnings: append(warnings, res.Warnings...)}
	if err != nil {
		out.warnings = append(out.warnings, err.Error())
		out.errors = res.Failed
	}
	return out, nil
}
