package mpecsgostats

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otelcoltest"
	commonpb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/common/v1"
	metricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/metrics/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// otlpTestNow and otlpTestStart are the times of the test sends.
var (
	otlpTestNow   = time.Unix(1795613637, 123456789)
	otlpTestStart = time.Unix(1795600000, 5e8)
)

// handlerValues are the values of a golang-stats-api-handler target.
func handlerValues() values { return ofKeys(handlerValuesByKey()) }

func handlerValuesByKey() map[string]float64 {
	return map[string]float64{
		"runtime.goroutine_num":         12,
		"runtime.cgo_call_num":          3,
		"memory.memory_alloc":           2_500_000,
		"memory.memory_sys":             12_000_000,
		"memory.memory_stack":           655_360,
		"operation.memory_lookups":      0,
		"operation.memory_mallocs":      51_234,
		"operation.memory_frees":        40_000,
		"heap.heap_sys":                 7_864_320,
		"heap.heap_idle":                4_000_000,
		"heap.heap_inuse":               3_864_320,
		"heap.heap_released":            2_000_000,
		"gc.gc_num":                     17,
		"gc.gc_per_second":              0.5,
		"gc.gc_pause_per_second":        0.12,
		"objects.heap_objects":          11_234,
		"allocation.memory_total_alloc": 98_765_432,
		"gc._next_gc":                   8_388_608, // gc_next
		"runtime._gomaxprocs":           4,         // gomaxprocs
	}
}

// expvarValues are the values of an expvar target at its second run, the
// hidden counters among them.
func expvarValues() values {
	v := handlerValuesByKey()
	delete(v, "runtime.goroutine_num") // expvar has no goroutine count
	delete(v, "runtime.cgo_call_num")
	delete(v, "runtime._gomaxprocs")
	v["gc._num_gc"] = 17
	v["gc._pause_total_ns"] = 1_234_567
	return ofKeys(v)
}

// otlpRow is one data point of a ResourceMetrics, flattened for comparison.
type otlpRow struct {
	metric, unit, kind string // kind: gauge, sum/monotonic, sum/updown
	attrs              string // k=v,... of the data point
	value              string // an integer as it is, a double with %g
	start, time        uint64
}

func (r otlpRow) String() string {
	return fmt.Sprintf("%s [%s] %s {%s} = %s (start %d, time %d)", r.metric, r.unit, r.kind, r.attrs, r.value, r.start, r.time)
}

func otlpKVs(kvs []*commonpb.KeyValue) string {
	var s []string
	for _, kv := range kvs {
		s = append(s, kv.Key+"="+kv.Value.GetStringValue())
	}
	return strings.Join(s, ",")
}

// otlpRows flattens rm's data points, in order. Data points of a sum that is
// not cumulative are marked so.
func otlpRows(rm *metricspb.ResourceMetrics) []otlpRow {
	var rows []otlpRow
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			kind, points := otelcoltest.Kind(m), append(m.GetGauge().GetDataPoints(), m.GetSum().GetDataPoints()...)
			for _, p := range points {
				v := fmt.Sprint(p.GetAsInt())
				if d, ok := p.Value.(*metricspb.NumberDataPoint_AsDouble); ok {
					v = fmt.Sprintf("%g", d.AsDouble)
				}
				rows = append(rows, otlpRow{m.Name, m.Unit, kind, otlpKVs(p.Attributes), v, p.StartTimeUnixNano, p.TimeUnixNano})
			}
		}
	}
	return rows
}

// TestOTLPIdentityAttributes: the resource attributes of a target, as its
// source makes it (the task ARN and its parts, the cluster as the source
// gives it).
func TestOTLPIdentityAttributes(t *testing.T) {
	const (
		arnNew = "arn:aws:ecs:ap-northeast-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"
		arnOld = "arn:aws:ecs:us-east-1:210987654321:task/8f1b6f4e-2c7a-4b8e-9d6e-0a1b2c3d4e5f"
		cid    = "4d3c2b1a4d3c2b1a4d3c2b1a4d3c2b1a4d3c2b1a4d3c2b1a4d3c2b1a4d3c2b1a"
	)
	// task is a target with the task ARN's fields as the sources fill them.
	task := func(t target, arn string) target {
		t.TaskARN, t.TaskID, t.ARN = arn, taskID(arn), parseTaskARN(arn)
		return t
	}
	tests := []struct {
		name   string
		target target
		want   string
	}{
		{"EC2 task, cluster name", task(target{
			Family: "web", Revision: "7", Cluster: "prod", LaunchType: "EC2",
			ECSContainer: "app", ContainerID: cid, PrivatePort: 8080, HostName: "ip-10-0-0-1.ec2.internal",
		}, arnNew), "service.name=web,service.instance.id=0123456789abcdef0123456789abcdef/app:8080," +
			"cloud.provider=aws,cloud.platform=aws_ecs,cloud.region=ap-northeast-1,cloud.account.id=123456789012," +
			"aws.ecs.cluster.arn=arn:aws:ecs:ap-northeast-1:123456789012:cluster/prod," +
			"aws.ecs.task.arn=" + arnNew + ",aws.ecs.task.id=0123456789abcdef0123456789abcdef," +
			"aws.ecs.task.family=web,aws.ecs.task.revision=7,aws.ecs.launchtype=ec2," +
			"container.name=app,container.id=" + cid + ",host.name=ip-10-0-0-1.ec2.internal"},
		{"Fargate task, old task ARN, cluster ARN", task(target{
			Family: "api", Revision: "12", Cluster: "arn:aws:ecs:us-east-1:210987654321:cluster/default",
			LaunchType: "FARGATE", ECSContainer: "api", PrivatePort: 6060,
		}, arnOld), "service.name=api,service.instance.id=8f1b6f4e-2c7a-4b8e-9d6e-0a1b2c3d4e5f/api:6060," +
			"cloud.provider=aws,cloud.platform=aws_ecs,cloud.region=us-east-1,cloud.account.id=210987654321," +
			"aws.ecs.cluster.arn=arn:aws:ecs:us-east-1:210987654321:cluster/default," +
			"aws.ecs.task.arn=" + arnOld + ",aws.ecs.task.id=8f1b6f4e-2c7a-4b8e-9d6e-0a1b2c3d4e5f," +
			"aws.ecs.task.family=api,aws.ecs.task.revision=12,aws.ecs.launchtype=fargate,container.name=api"},
		{"China partition", task(target{
			Cluster: "c1", ECSContainer: "app", PrivatePort: 80,
		}, "arn:aws-cn:ecs:cn-north-1:123456789012:task/c1/abc"), "service.name=app,service.instance.id=abc/app:80,cloud.provider=aws,cloud.platform=aws_ecs," +
			"cloud.region=cn-north-1,cloud.account.id=123456789012,aws.ecs.cluster.arn=arn:aws-cn:ecs:cn-north-1:123456789012:cluster/c1," +
			"aws.ecs.task.arn=arn:aws-cn:ecs:cn-north-1:123456789012:task/c1/abc,aws.ecs.task.id=abc,container.name=app"},
		{"task id and cluster name only: no ARN to build from", target{
			Family: "web", TaskID: "f00d", Cluster: "prod", ECSContainer: "app", PrivatePort: 8080,
		}, "service.name=web,service.instance.id=f00d/app:8080,cloud.provider=aws,cloud.platform=aws_ecs," +
			"aws.ecs.task.id=f00d,aws.ecs.task.family=web,container.name=app"},
		{"not an ECS task ARN: ignored", target{
			TaskARN: "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc", ARN: parseTaskARN("arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"),
			TaskID: "t1", ECSContainer: "app",
		}, "service.name=app,service.instance.id=t1/app,aws.ecs.task.id=t1,container.name=app"},
		{"malformed ARN: ignored", target{TaskARN: "arn:aws:ecs:task/x", ARN: parseTaskARN("arn:aws:ecs:task/x"), ECSContainer: "app", PrivatePort: 1},
			"service.name=app,service.instance.id=/app:1,container.name=app"},
		{"a plain Docker container", target{ContainerName: "gostats-1", ContainerID: cid, PrivatePort: 8080},
			"service.name=gostats-1,service.instance.id=" + cid + "/gostats-1:8080,container.name=gostats-1,container.id=" + cid},
		{"nothing", target{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := otlpKVs(identityOf(tt.target).attributes()); got != tt.want {
				t.Errorf("attributes:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestOTLPResourceMetrics(t *testing.T) {
	start, now := uint64(otlpTestStart.UnixNano()), uint64(otlpTestNow.UnixNano())
	gauge := func(name, unit, v string) otlpRow { return otlpRow{name, unit, "gauge", "", v, 0, now} }
	counter := func(name, unit, v string) otlpRow { return otlpRow{name, unit, "sum/monotonic", "", v, start, now} }
	updown := func(name, unit, attrs, v string) otlpRow {
		return otlpRow{name, unit, "sum/updown", attrs, v, start, now}
	}
	handler := []otlpRow{
		gauge("ecs_gostats.up", "1", "1"),
		updown("go.goroutine.count", "{goroutine}", "", "12"),
		updown("go.memory.used", "By", "go.memory.type=stack", "655360"),
		updown("go.memory.used", "By", "go.memory.type=other", "9344640"), // 12000000-2000000-655360
		counter("go.memory.allocated", "By", "98765432"),
		counter("go.memory.gc.cycles", "{gc_cycle}", "17"),
		updown("go.memory.gc.goal", "By", "", "8388608"),
		updown("go.processor.limit", "{thread}", "", "4"),
		gauge("ecs_gostats.memory.sys", "By", "12000000"),
		gauge("ecs_gostats.memory.alloc", "By", "2500000"),
		counter("ecs_gostats.memory.mallocs", "{allocation}", "51234"),
		counter("ecs_gostats.memory.frees", "{free}", "40000"),
		counter("ecs_gostats.memory.lookups", "{lookup}", "0"),
		gauge("ecs_gostats.heap.sys", "By", "7864320"),
		gauge("ecs_gostats.heap.idle", "By", "4000000"),
		gauge("ecs_gostats.heap.inuse", "By", "3864320"),
		gauge("ecs_gostats.heap.released", "By", "2000000"),
		gauge("ecs_gostats.heap.objects", "{object}", "11234"),
		counter("ecs_gostats.cgo.calls", "{call}", "3"),
	}
	var expvar []otlpRow
	for _, r := range handler {
		switch r.metric {
		case "go.goroutine.count", "ecs_gostats.cgo.calls", "go.processor.limit":
		case "ecs_gostats.memory.sys":
			expvar = append(expvar, counter("ecs_gostats.gc.pause.time", "s", "0.001234567"), r)
		default:
			expvar = append(expvar, r)
		}
	}
	tests := []struct {
		name   string
		target otlpTarget
		want   []otlpRow
	}{
		{"handler", otlpTarget{up: true, values: handlerValues(), start: otlpTestStart}, handler},
		{"expvar: the hidden counters", otlpTarget{up: true, values: expvarValues(), start: otlpTestStart}, expvar},
		{"expvar without gc.gc_num: the hidden count", otlpTarget{up: true, start: otlpTestStart,
			values: ofKeys(map[string]float64{"gc._num_gc": 4, "gc._pause_total_ns": 2e9})},
			[]otlpRow{gauge("ecs_gostats.up", "1", "1"), counter("go.memory.gc.cycles", "{gc_cycle}", "4"), counter("ecs_gostats.gc.pause.time", "s", "2")}},
		{"client_golang 1.20 and later: go.memory.allocations from /gc/heap/allocs:objects", otlpTarget{up: true, start: otlpTestStart,
			values: ofKeys(map[string]float64{"operation.memory_mallocs": 700, "operation._heap_allocs_objects": 600, "gc._next_gc": 4194304, "runtime._gomaxprocs": 2})},
			[]otlpRow{gauge("ecs_gostats.up", "1", "1"), counter("go.memory.allocations", "{allocation}", "600"),
				updown("go.memory.gc.goal", "By", "", "4194304"), updown("go.processor.limit", "{thread}", "", "2"),
				counter("ecs_gostats.memory.mallocs", "{allocation}", "700")}},
		{"failed: up 0 only", otlpTarget{up: false, values: handlerValues(), start: otlpTestStart},
			[]otlpRow{gauge("ecs_gostats.up", "1", "0")}},
		{"answered without values", otlpTarget{up: true, start: otlpTestStart}, []otlpRow{gauge("ecs_gostats.up", "1", "1")}},
		{"stack without sys: no other part; start unknown", otlpTarget{up: true,
			values: ofKeys(map[string]float64{"memory.memory_stack": 32768, "heap.heap_released": 0})},
			[]otlpRow{gauge("ecs_gostats.up", "1", "1"), {"go.memory.used", "By", "sum/updown", "go.memory.type=stack", "32768", 0, now},
				gauge("ecs_gostats.heap.released", "By", "0")}},
		{"start after now (clock skew): left out", otlpTarget{up: true, start: otlpTestNow.Add(time.Second),
			values: ofKeys(map[string]float64{"gc.gc_num": 1})},
			[]otlpRow{gauge("ecs_gostats.up", "1", "1"), {"go.memory.gc.cycles", "{gc_cycle}", "sum/monotonic", "", "1", 0, now}}},
		{"values an integer cannot hold are left out", otlpTarget{up: true, start: otlpTestStart,
			values: ofKeys(map[string]float64{"heap.heap_sys": 1e19, "heap.heap_idle": -1e19, "heap.heap_inuse": 1.6})},
			[]otlpRow{gauge("ecs_gostats.up", "1", "1"), gauge("ecs_gostats.heap.inuse", "By", "2")}},
	}
	scope := &commonpb.InstrumentationScope{Name: otlpScopeName, Version: "test"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.target.resource = otlpIdentity{ContainerName: "app"}.attributes()
			rm := tt.target.resourceMetrics(otlpTestNow, scope)
			if got := otlpKVs(rm.Resource.Attributes); got != "service.name=app,service.instance.id=/app,container.name=app" {
				t.Errorf("resource: %s", got)
			}
			if len(rm.ScopeMetrics) != 1 || !proto.Equal(rm.ScopeMetrics[0].Scope, scope) {
				t.Errorf("scopes: %v", rm.ScopeMetrics)
			}
			const schema = "https://opentelemetry.io/schemas/1.44.0"
			if rm.SchemaUrl != schema || len(rm.ScopeMetrics) == 1 && rm.ScopeMetrics[0].SchemaUrl != schema {
				t.Errorf("schema URLs %q, %v; want %s on both", rm.SchemaUrl, rm.ScopeMetrics, schema)
			}
			got := otlpRows(rm)
			if !slices.Equal(got, tt.want) {
				t.Errorf("data points:\n%s", otlpRowsDiff(got, tt.want))
			}
		})
	}
}

func otlpRowsDiff(got, want []otlpRow) string {
	var b strings.Builder
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w string
		if i < len(got) {
			g = got[i].String()
		}
		if i < len(want) {
			w = want[i].String()
		}
		mark := "  "
		if g != w {
			mark = "! "
		}
		fmt.Fprintf(&b, "%s got  %s\n%s want %s\n", mark, g, mark, w)
	}
	return b.String()
}

// otlpTestTargets are n targets as a run of a big cluster would have them:
// 1 in 10 failed, the rest with the handler's values.
func otlpTestTargets(n int) []otlpTarget {
	targets := make([]otlpTarget, n)
	for i := range targets {
		arn := fmt.Sprintf("arn:aws:ecs:ap-northeast-1:123456789012:task/production/%032x", i)
		targets[i] = otlpTarget{
			resource: identityOf(target{
				Family: fmt.Sprintf("service-%03d", i%50), Revision: fmt.Sprint(1 + i%9),
				TaskARN: arn, TaskID: taskID(arn), ARN: parseTaskARN(arn),
				Cluster:    "production",
				LaunchType: "EC2", ECSContainer: "app", ContainerID: fmt.Sprintf("%064x", i), PrivatePort: 8080,
				HostName: fmt.Sprintf("ip-10-0-%d-%d.ap-northeast-1.compute.internal", i/250, i%250),
			}).attributes(),
			up:     i%10 != 9,
			values: handlerValues(),
			start:  otlpTestStart,
		}
	}
	return targets
}

// The request sizes of 1,000 targets, exactly: a change to what is sent
// shows here.
func TestOTLPRequests(t *testing.T) {
	scope := &commonpb.InstrumentationScope{Name: otlpScopeName, Version: "1.2.3"}
	tests := []struct {
		name    string
		targets int
		big     int // bytes of an attribute added to each target's resource
		limit   int
		sizes   []int
	}{
		{"1,000 targets: one request", 1000, 0, otlpMaxRequestBytes, []int{1953660}},
		// as 3,000 targets would, without the memory they take (the test
		// process's peak RSS is also what run_test.go measures of the plugin
		// processes it starts)
		{"25 targets of 200 KB: two requests", 25, 200_000, otlpMaxRequestBytes, []int{3434391, 1615591}},
		{"10 targets in requests of 8 KB", 10, 0, 8000, []int{6195, 6195, 7131}},
		{"a target bigger than the limit goes alone", 3, 0, 100, []int{2065, 2065, 2065}},
		{"no targets", 0, 0, otlpMaxRequestBytes, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			targets := otlpTestTargets(tt.targets)
			if tt.big > 0 {
				big := otlpString("test.big", strings.Repeat("x", tt.big))
				for i := range targets {
					targets[i].resource = append(targets[i].resource, big)
				}
			}
			reqs := otlpRequests(targets, otlpTestNow, scope, tt.limit)
			var sizes []int
			var all []*metricspb.ResourceMetrics
			for i, r := range reqs {
				sizes = append(sizes, proto.Size(r))
				if sizes[i] > tt.limit && len(r.ResourceMetrics) > 1 {
					t.Errorf("request %d: %d bytes with %d resources, over the limit %d", i, sizes[i], len(r.ResourceMetrics), tt.limit)
				}
				// as few requests as fit: the next request's first resource did not fit in this one
				if i+1 < len(reqs) {
					next := reqs[i+1].ResourceMetrics[0]
					if with := sizes[i] + protowire.SizeTag(1) + protowire.SizeBytes(proto.Size(next)); with <= tt.limit {
						t.Errorf("request %d: the next resource would have fit (%d bytes)", i, with)
					}
				}
				all = append(all, r.ResourceMetrics...)
			}
			if len(all) != len(targets) {
				t.Fatalf("%d resources in the requests, want %d", len(all), len(targets))
			}
			for i, rm := range all {
				if !proto.Equal(rm, targets[i].resourceMetrics(otlpTestNow, scope)) {
					t.Fatalf("resource %d is not target %d's", i, i)
				}
			}
			if !slices.Equal(sizes, tt.sizes) {
				t.Errorf("%d requests of %v bytes, want %v", len(sizes), sizes, tt.sizes)
			}
		})
	}
}

// docs/otlp.md has the table otlpMetrics makes.
func TestOTLPDocTable(t *testing.T) {
	doc, err := os.ReadFile("../docs/otlp.md")
	if err != nil {
		t.Fatal(err)
	}
	if table := otlpDocTable(); !strings.Contains(string(doc), table) {
		t.Errorf("docs/otlp.md does not have this table of otlpMetrics:\n%s", table)
	}
}

// otlpDocTable is the mapping table of docs/otlp.md.
func otlpDocTable() string {
	var b strings.Builder
	b.WriteString("| OTLP metric | attributes | unit | kind | from (handler's key) | description |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, m := range append([]otlpMetric{otlpUp}, otlpMetrics...) {
		var attrs, from []string
		for _, a := range m.attrs {
			attrs = append(attrs, "`"+a[0]+"="+a[1]+"`")
		}
		for _, k := range m.keys {
			from = append(from, "`"+k.key()+"`")
		}
		src := strings.Join(from, ", else ")
		switch {
		case m.name == otlpUpMetric:
			src = "every target"
		case m.derive != nil:
			src = "`memory.memory_sys` − `heap.heap_released` − `memory.memory_stack`"
		case m.scale != 0:
			src += fmt.Sprintf(" × %g", m.scale)
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s | %s | %s |\n", m.name, strings.Join(attrs, " "), m.unit, m.kind, src, m.desc)
	}
	return b.String()
}
