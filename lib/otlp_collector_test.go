package mpecsgostats

// The OTLP exporter against the real OpenTelemetry Collector of
// tools/otelcol (OTELCOL_BIN; see internal/otelcoltest), and against
// endpoints that fail: nothing listening, a listener that never answers, TLS
// the exporter cannot verify or that the other end does not speak.

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otelcoltest"
	commonpb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/common/v1"
	metricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/metrics/v1"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlptest"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/testenv"
)

const (
	// otlpTestKey stands for a Mackerel API key; it must never show in an
	// error or a warning.
	otlpTestKey = "test-key-0123456789abcdefghijklmnopqrstuv"
	// otlpHeaderAttr is the data point attribute the collector copies the
	// received Mackerel-Api-Key header into.
	otlpHeaderAttr  = "received.mackerel-api-key"
	otlpTestTimeout = 2 * time.Second
	// otlpMargin: a failing send ends within its timeout plus this.
	otlpMargin = 1500 * time.Millisecond
)

// otlpCollectorTargets are a run's targets: two that answered (the handler's
// and expvar's values) and one that failed.
func otlpCollectorTargets() []otlpTarget {
	task := func(t target, arn string) target {
		t.TaskARN, t.TaskID, t.ARN = arn, taskID(arn), parseTaskARN(arn)
		return t
	}
	return []otlpTarget{
		{resource: identityOf(task(target{Family: "web", Revision: "3", ECSContainer: "app", PrivatePort: 8080,
			Cluster: "prod", LaunchType: "EC2", ContainerID: "c0ffee", HostName: "ip-10-0-0-1"},
			"arn:aws:ecs:ap-northeast-1:123456789012:task/prod/aaaa")).attributes(),
			up: true, values: handlerValues(), start: otlpTestStart},
		{resource: identityOf(task(target{Family: "api", Revision: "1", ECSContainer: "api", PrivatePort: 6060,
			Cluster: "prod", LaunchType: "FARGATE"}, "arn:aws:ecs:ap-northeast-1:123456789012:task/prod/bbbb")).attributes(),
			up: true, values: expvarValues(), start: otlpTestStart.Add(time.Minute)},
		{resource: identityOf(task(target{Family: "web", Revision: "3", ECSContainer: "app", PrivatePort: 8080,
			Cluster: "prod", LaunchType: "EC2"}, "arn:aws:ecs:ap-northeast-1:123456789012:task/prod/cccc")).attributes(),
			up: false, start: otlpTestStart},
	}
}

// otlpWant is a resource as the collector must have received it, written
// out by hand: its attributes (k=v,...) and its data points.
type otlpWant struct {
	attrs string
	rows  []otlpRow
}

// otlpWantHandler are the data points of a target with handlerValues and
// expvarValues at otlpTestNow, the sums starting at start.
func otlpWantHandler(start time.Time) []otlpRow {
	s, now := uint64(start.UnixNano()), uint64(otlpTestNow.UnixNano())
	return []otlpRow{
		{"ecs_gostats.up", "1", "gauge", "", "1", 0, now},
		{"go.goroutine.count", "{goroutine}", "sum/updown", "", "12", s, now},
		{"go.memory.used", "By", "sum/updown", "go.memory.type=stack", "655360", s, now},
		{"go.memory.used", "By", "sum/updown", "go.memory.type=other", "9344640", s, now},
		{"go.memory.allocated", "By", "sum/monotonic", "", "98765432", s, now},
		{"go.memory.gc.cycles", "{gc_cycle}", "sum/monotonic", "", "17", s, now},
		{"go.memory.gc.goal", "By", "sum/updown", "", "8388608", s, now},
		{"go.processor.limit", "{thread}", "sum/updown", "", "4", s, now},
		{"ecs_gostats.memory.sys", "By", "gauge", "", "12000000", 0, now},
		{"ecs_gostats.memory.alloc", "By", "gauge", "", "2500000", 0, now},
		{"ecs_gostats.memory.mallocs", "{allocation}", "sum/monotonic", "", "51234", s, now},
		{"ecs_gostats.memory.frees", "{free}", "sum/monotonic", "", "40000", s, now},
		{"ecs_gostats.memory.lookups", "{lookup}", "sum/monotonic", "", "0", s, now},
		{"ecs_gostats.heap.sys", "By", "gauge", "", "7864320", 0, now},
		{"ecs_gostats.heap.idle", "By", "gauge", "", "4000000", 0, now},
		{"ecs_gostats.heap.inuse", "By", "gauge", "", "3864320", 0, now},
		{"ecs_gostats.heap.released", "By", "gauge", "", "2000000", 0, now},
		{"ecs_gostats.heap.objects", "{object}", "gauge", "", "11234", 0, now},
		{"ecs_gostats.cgo.calls", "{call}", "sum/monotonic", "", "3", s, now},
	}
}

func otlpWantExpvar(start time.Time) []otlpRow {
	s, now := uint64(start.UnixNano()), uint64(otlpTestNow.UnixNano())
	return []otlpRow{
		{"ecs_gostats.up", "1", "gauge", "", "1", 0, now},
		{"go.memory.used", "By", "sum/updown", "go.memory.type=stack", "655360", s, now},
		{"go.memory.used", "By", "sum/updown", "go.memory.type=other", "9344640", s, now},
		{"go.memory.allocated", "By", "sum/monotonic", "", "98765432", s, now},
		{"go.memory.gc.cycles", "{gc_cycle}", "sum/monotonic", "", "17", s, now},
		{"go.memory.gc.goal", "By", "sum/updown", "", "8388608", s, now},
		{"ecs_gostats.gc.pause.time", "s", "sum/monotonic", "", "0.001234567", s, now},
		{"ecs_gostats.memory.sys", "By", "gauge", "", "12000000", 0, now},
		{"ecs_gostats.memory.alloc", "By", "gauge", "", "2500000", 0, now},
		{"ecs_gostats.memory.mallocs", "{allocation}", "sum/monotonic", "", "51234", s, now},
		{"ecs_gostats.memory.frees", "{free}", "sum/monotonic", "", "40000", s, now},
		{"ecs_gostats.memory.lookups", "{lookup}", "sum/monotonic", "", "0", s, now},
		{"ecs_gostats.heap.sys", "By", "gauge", "", "7864320", 0, now},
		{"ecs_gostats.heap.idle", "By", "gauge", "", "4000000", 0, now},
		{"ecs_gostats.heap.inuse", "By", "gauge", "", "3864320", 0, now},
		{"ecs_gostats.heap.released", "By", "gauge", "", "2000000", 0, now},
		{"ecs_gostats.heap.objects", "{object}", "gauge", "", "11234", 0, now},
	}
}

// otlpWantDown is the one data point of a target that failed.
func otlpWantDown() []otlpRow {
	return []otlpRow{{"ecs_gostats.up", "1", "gauge", "", "0", 0, uint64(otlpTestNow.UnixNano())}}
}

// otlpWantCollectorTargets are otlpCollectorTargets as received.
func otlpWantCollectorTargets() []otlpWant {
	const arn, cluster = "arn:aws:ecs:ap-northeast-1:123456789012:task/prod/", "arn:aws:ecs:ap-northeast-1:123456789012:cluster/prod"
	const cloud = "cloud.provider=aws,cloud.platform=aws_ecs,cloud.region=ap-northeast-1,cloud.account.id=123456789012,aws.ecs.cluster.arn=" + cluster
	return []otlpWant{
		{"service.name=web,service.instance.id=aaaa/app:8080," + cloud + ",aws.ecs.task.arn=" + arn + "aaaa,aws.ecs.task.id=aaaa," +
			"aws.ecs.task.family=web,aws.ecs.task.revision=3,aws.ecs.launchtype=ec2,container.name=app,container.id=c0ffee,host.name=ip-10-0-0-1",
			otlpWantHandler(otlpTestStart)},
		{"service.name=api,service.instance.id=bbbb/api:6060," + cloud + ",aws.ecs.task.arn=" + arn + "bbbb,aws.ecs.task.id=bbbb," +
			"aws.ecs.task.family=api,aws.ecs.task.revision=1,aws.ecs.launchtype=fargate,container.name=api",
			otlpWantExpvar(otlpTestStart.Add(time.Minute))},
		{"service.name=web,service.instance.id=cccc/app:8080," + cloud + ",aws.ecs.task.arn=" + arn + "cccc,aws.ecs.task.id=cccc," +
			"aws.ecs.task.family=web,aws.ecs.task.revision=3,aws.ecs.launchtype=ec2,container.name=app",
			otlpWantDown()},
	}
}

// otlpWantTestTargets are otlpTestTargets(n) as received.
func otlpWantTestTargets(n int) []otlpWant {
	var want []otlpWant
	for i := range n {
		attrs := fmt.Sprintf("service.name=service-%03d,service.instance.id=%032x/app:8080,cloud.provider=aws,cloud.platform=aws_ecs,"+
			"cloud.region=ap-northeast-1,cloud.account.id=123456789012,aws.ecs.cluster.arn=arn:aws:ecs:ap-northeast-1:123456789012:cluster/production,"+
			"aws.ecs.task.arn=arn:aws:ecs:ap-northeast-1:123456789012:task/production/%032x,aws.ecs.task.id=%032x,aws.ecs.task.family=service-%03d,"+
			"aws.ecs.task.revision=%d,aws.ecs.launchtype=ec2,container.name=app,container.id=%064x,host.name=ip-10-0-%d-%d.ap-northeast-1.compute.internal",
			i%50, i, i, i, i%50, 1+i%9, i, i/250, i%250)
		rows := otlpWantHandler(otlpTestStart)
		if i%10 == 9 {
			rows = otlpWantDown()
		}
		want = append(want, otlpWant{attrs, rows})
	}
	return want
}

// otlpCheckReceived compares what the collector received with want,
// exactly: resources, scope (the plugin's name and version), every data
// point's name, unit, kind, value and times. Each data point's header
// attribute must be key (none when key is ""); it is taken off before the
// comparison.
func otlpCheckReceived(t *testing.T, got []*metricspb.ResourceMetrics, want []otlpWant, key, version string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("collector received %d resources, want %d", len(got), len(want))
	}
	for i, rm := range got {
		if g := otlpKVs(rm.GetResource().GetAttributes()); g != want[i].attrs {
			t.Errorf("resource %d:\n got %s\nwant %s", i, g, want[i].attrs)
		}
		if len(rm.ScopeMetrics) != 1 || rm.ScopeMetrics[0].GetScope().GetName() != "github.com/ecs-gostats/mackerel-plugin-ecs-gostats" ||
			rm.ScopeMetrics[0].GetScope().GetVersion() != version || len(rm.ScopeMetrics[0].GetScope().GetAttributes()) != 0 {
			t.Errorf("resource %d: scopes %v", i, rm.ScopeMetrics)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				for _, p := range append(m.GetGauge().GetDataPoints(), m.GetSum().GetDataPoints()...) {
					var header []string
					p.Attributes = slices.DeleteFunc(p.Attributes, func(kv *commonpb.KeyValue) bool {
						if kv.Key == otlpHeaderAttr {
							header = append(header, kv.Value.GetStringValue())
							return true
						}
						return false
					})
					if wantHeader := []string{key}; key == "" && len(header) != 0 || key != "" && !slices.Equal(header, wantHeader) {
						t.Errorf("resource %d, %s: header attribute %q, want %q", i, m.Name, header, key)
					}
				}
			}
		}
		if g := otlpRows(rm); !slices.Equal(g, want[i].rows) {
			t.Errorf("resource %d data points:\n%s", i, otlpRowsDiff(g, want[i].rows))
		}
	}
}

func TestOTLPCollector(t *testing.T) {
	bin := otelcoltest.Bin(t)
	col := otelcoltest.Start(t, bin, otelcoltest.Options{HeaderAttribute: otlpHeaderAttr})
	targets := otlpCollectorTargets()

	var wire atomic.Int64
	client := otlptest.CountingClient(nil, &wire)
	e := &otlpExporter{endpoint: col.Endpoint, insecure: true, apiKey: otlpTestKey, timeout: otlpTestTimeout, version: "1.2.3",
		httpClient: client}
	res, err := e.send(context.Background(), targets, otlpTestNow)
	if err != nil {
		t.Fatal(err)
	}
	// 4,222 bytes: a change to what is sent shows here (TestOTLPRequests
	// has the sizes of more targets)
	if res.Requests != 1 || res.Failed != 0 || res.Bytes != 4222 || res.Points != 19+17+1 || len(res.Warnings) != 0 {
		t.Errorf("result %+v, want 1 request of 4,222 bytes, 37 points, no warnings", res)
	}
	otlpCheckReceived(t, col.WaitMetrics(t, len(targets), 10*time.Second), otlpWantCollectorTargets(), otlpTestKey, "1.2.3")

	// gzip: what went over the connection (HTTP/2 framing and headers
	// included) is smaller than the request
	if n := wire.Load(); n <= 0 || n >= int64(res.Bytes) {
		t.Errorf("%d bytes written for a request of %d: not compressed", n, res.Bytes)
	}
}

func TestOTLPCollectorNoKey(t *testing.T) {
	col := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{HeaderAttribute: otlpHeaderAttr})
	targets := otlpCollectorTargets()[:1]
	e := &otlpExporter{endpoint: col.Endpoint, insecure: true, timeout: otlpTestTimeout, version: "test"}
	if _, err := e.send(context.Background(), targets, otlpTestNow); err != nil {
		t.Fatal(err)
	}
	otlpCheckReceived(t, col.WaitMetrics(t, 1, 10*time.Second), otlpWantCollectorTargets()[:1], "", "test")
}

// Requests of at most 20 KB: 40 targets in four requests, all received in
// order. Worked out from TestOTLPRequests's sizes (a byte less each here,
// the scope's version being "test"): targets 0 to 9 take 2,064 bytes of a
// request (935 for the failed target 9), targets from 10 one more (a
// two-digit host name); 10 of them fit under 20,000 bytes (19,511 for 0 to
// 9, 19,521 for each ten after).
func TestOTLPCollectorManyRequests(t *testing.T) {
	col := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{})
	targets := otlpTestTargets(40)
	e := &otlpExporter{endpoint: col.Endpoint, insecure: true, timeout: otlpTestTimeout, version: "test", maxRequestBytes: 20_000}
	res, err := e.send(context.Background(), targets, otlpTestNow)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 4 || res.Failed != 0 || res.Bytes != (9*2064+935)+3*(9*2065+936) {
		t.Errorf("result %+v, want 4 requests of 78,074 bytes", res)
	}
	got := col.WaitMetrics(t, len(targets), 10*time.Second)
	otlpCheckReceived(t, got, otlpWantTestTargets(40), "", "test")
	reqs, err := col.Requests()
	if err != nil {
		t.Fatal(err)
	}
	var per []int
	for _, r := range reqs {
		per = append(per, len(r))
	}
	if !slices.Equal(per, []int{10, 10, 10, 10}) {
		t.Errorf("resources per request received %v, want [10 10 10 10]", per)
	}
}

// TLS verified against the system roots, with the test's CA in them through
// SSL_CERT_FILE: Go reads it once per process, so the send runs in a process
// of its own (this test binary again, TestOTLPHelperProcess).
func TestOTLPCollectorTLSSystemRoots(t *testing.T) {
	col := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{TLS: true, HeaderAttribute: otlpHeaderAttr})
	for _, endpoint := range []string{col.Endpoint, strings.Replace(col.Endpoint, "127.0.0.1", "localhost", 1)} {
		t.Run(endpoint, func(t *testing.T) {
			out, err := testenv.HelperProcess(t, "TestOTLPHelperProcess", map[string]string{
				"SSL_CERT_FILE": col.CAFile, "OTLP_HELPER_ENDPOINT": endpoint, "OTLP_HELPER_KEY": otlpTestKey,
			})
			if err != nil || out != "ok 1 request\n" {
				t.Fatalf("helper: %v\n%s", err, out)
			}
		})
	}
	want := otlpWantCollectorTargets()
	otlpCheckReceived(t, col.WaitMetrics(t, 2*len(want), 10*time.Second), append(want, want...), otlpTestKey, "helper")
}

// TestOTLPHelperProcess sends otlpCollectorTargets with TLS and the system
// roots to OTLP_HELPER_ENDPOINT and prints the outcome; without it, it does
// nothing.
func TestOTLPHelperProcess(t *testing.T) {
	endpoint := os.Getenv("OTLP_HELPER_ENDPOINT")
	if endpoint == "" {
		return
	}
	e := &otlpExporter{endpoint: endpoint, apiKey: os.Getenv("OTLP_HELPER_KEY"), timeout: otlpTestTimeout, version: "helper"}
	res, err := e.send(context.Background(), otlpCollectorTargets(), otlpTestNow)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Printf("ok %d request\n", res.Requests)
}

// Sends that fail: each ends within the timeout (plus a margin) with one
// line that names the endpoint and not the key.
func TestOTLPSendFails(t *testing.T) {
	bin := otelcoltest.Bin(t)
	plain := otelcoltest.Start(t, bin, otelcoltest.Options{})
	tlsCol := otelcoltest.Start(t, bin, otelcoltest.Options{TLS: true})
	hung := testenv.HungListener(t)
	refused := otlpRefusedEndpoint(t)

	tests := []struct {
		name     string
		endpoint string
		insecure bool
		want     string // in the error
		slow     bool   // takes the whole timeout
	}{
		{"nothing listens", refused, true, "Unavailable: ", false},
		{"nothing listens, TLS", refused, false, "Unavailable: ", false},
		{"a listener that never answers", hung, true, "DeadlineExceeded: ", true},
		{"a listener that never answers, TLS", hung, false, "DeadlineExceeded: ", true},
		{"TLS to a plain-text receiver", plain.Endpoint, false, "Unavailable: ", false},
		{"a certificate of a CA not in the system roots", tlsCol.Endpoint, false, "certificate signed by unknown authority", false},
		{"plain text to a TLS receiver", tlsCol.Endpoint, true, "Unavailable: ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &otlpExporter{endpoint: tt.endpoint, insecure: tt.insecure, apiKey: otlpTestKey, timeout: otlpTestTimeout, version: "test"}
			start := time.Now()
			res, err := e.send(context.Background(), otlpCollectorTargets(), otlpTestNow)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatalf("no error; result %+v", res)
			}
			msg := err.Error()
			t.Logf("%s after %s", msg, elapsed.Round(time.Millisecond))
			if !strings.HasPrefix(msg, "otlp "+tt.endpoint+": ") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want it to start with %q and contain %q", msg, "otlp "+tt.endpoint+": ", tt.want)
			}
			if strings.Contains(msg, otlpTestKey) || strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error %q has the key or more than one line", msg)
			}
			if res.Requests != 0 {
				t.Errorf("%d requests counted as sent", res.Requests)
			}
			if elapsed > otlpTestTimeout+otlpMargin || tt.slow && elapsed < otlpTestTimeout-100*time.Millisecond {
				t.Errorf("took %s; timeout %s", elapsed, otlpTestTimeout)
			}
		})
	}
	for _, c := range []*otelcoltest.Collector{plain, tlsCol} {
		if got, _ := c.Metrics(); len(got) != 0 {
			t.Errorf("collector at %s received %d resources", c.Endpoint, len(got))
		}
	}
}

// The context's deadline bounds a send as the timeout does.
func TestOTLPSendContextDeadline(t *testing.T) {
	hung := testenv.HungListener(t)
	e := &otlpExporter{endpoint: hung, insecure: true, version: "test"}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.send(ctx, otlpCollectorTargets(), otlpTestNow)
	if err == nil || !strings.Contains(err.Error(), "DeadlineExceeded") || time.Since(start) > 500*time.Millisecond+otlpMargin {
		t.Errorf("error %v after %s", err, time.Since(start))
	}
}

// otlpRefusedEndpoint is a loopback address where nothing listens.
func otlpRefusedEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
