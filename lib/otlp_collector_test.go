package mpecsgostats

// The OTLP exporter against the real OpenTelemetry Collector of
// tools/otelcol (OTELCOL_BIN; see internal/otelcoltest), and against
// endpoints that fail: nothing listening, a listener that never answers, TLS
// the exporter cannot verify or that the other end does not speak.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otelcoltest"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
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

// otlpCheckReceived compares what the collector received with what targets
// make, exactly: resources, scope, every data point's name, unit, kind,
// value and times. Each data point's header attribute must be key (none when
// key is ""); it is taken off before the comparison.
func otlpCheckReceived(t *testing.T, got []*metricspb.ResourceMetrics, targets []otlpTarget, key, version string) {
	t.Helper()
	if len(got) != len(targets) {
		t.Fatalf("collector received %d resources, want %d", len(got), len(targets))
	}
	scope := &commonpb.InstrumentationScope{Name: otlpScopeName, Version: version}
	for i, rm := range got {
		want := targets[i].resourceMetrics(otlpTestNow, scope)
		if g, w := otlpKVs(rm.GetResource().GetAttributes()), otlpKVs(want.Resource.Attributes); g != w {
			t.Errorf("resource %d:\n got %s\nwant %s", i, g, w)
		}
		if len(rm.ScopeMetrics) != 1 || !proto.Equal(rm.ScopeMetrics[0].Scope, scope) {
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
		if g, w := otlpRows(rm), otlpRows(want); !slices.Equal(g, w) {
			t.Errorf("resource %d data points:\n%s", i, otlpRowsDiff(g, w))
		}
	}
}

func TestOTLPCollector(t *testing.T) {
	bin := otelcoltest.Bin(t)
	col := otelcoltest.Start(t, bin, otelcoltest.Options{HeaderAttribute: otlpHeaderAttr})
	targets := otlpCollectorTargets()

	var wire atomic.Int64
	e := &otlpExporter{endpoint: col.Endpoint, insecure: true, apiKey: otlpTestKey, timeout: otlpTestTimeout, version: "1.2.3",
		dialer: otlpCountingDialer(&wire)}
	res, err := e.send(context.Background(), targets, otlpTestNow)
	if err != nil {
		t.Fatal(err)
	}
	want := otlpRequests(targets, otlpTestNow, &commonpb.InstrumentationScope{Name: otlpScopeName, Version: "1.2.3"}, otlpMaxRequestBytes)
	if res.requests != 1 || res.bytes != proto.Size(want[0]) || res.points != 17+16+1 || len(res.warnings) != 0 {
		t.Errorf("result %+v, want 1 request of %d bytes, 34 points, no warnings", res, proto.Size(want[0]))
	}
	otlpCheckReceived(t, col.WaitMetrics(t, len(targets), 10*time.Second), targets, otlpTestKey, "1.2.3")

	// gzip: what went over the connection (HTTP/2 framing and headers
	// included) is smaller than the request
	if n := wire.Load(); n <= 0 || n >= int64(res.bytes) {
		t.Errorf("%d bytes written for a request of %d: not compressed", n, res.bytes)
	}
}

func TestOTLPCollectorNoKey(t *testing.T) {
	col := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{HeaderAttribute: otlpHeaderAttr})
	targets := otlpCollectorTargets()[:1]
	e := &otlpExporter{endpoint: col.Endpoint, insecure: true, timeout: otlpTestTimeout, version: "test"}
	if _, err := e.send(context.Background(), targets, otlpTestNow); err != nil {
		t.Fatal(err)
	}
	otlpCheckReceived(t, col.WaitMetrics(t, 1, 10*time.Second), targets, "", "test")
}

// Requests of at most 20 KB: 40 targets in several requests, all received
// in order.
func TestOTLPCollectorManyRequests(t *testing.T) {
	col := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{})
	targets := otlpTestTargets(40)
	e := &otlpExporter{endpoint: col.Endpoint, insecure: true, timeout: otlpTestTimeout, version: "test", maxRequestBytes: 20_000}
	res, err := e.send(context.Background(), targets, otlpTestNow)
	if err != nil {
		t.Fatal(err)
	}
	reqs := otlpRequests(targets, otlpTestNow, &commonpb.InstrumentationScope{Name: otlpScopeName, Version: "test"}, 20_000)
	if len(reqs) != 4 || res.requests != len(reqs) {
		t.Errorf("%d requests sent, %d made, want 4", res.requests, len(reqs))
	}
	got := col.WaitMetrics(t, len(targets), 10*time.Second)
	otlpCheckReceived(t, got, targets, "", "test")
}

// TLS verified against the system roots, with the test's CA in them through
// SSL_CERT_FILE: Go reads it once per process, so the send runs in a process
// of its own (this test binary again, TestOTLPHelperProcess).
func TestOTLPCollectorTLSSystemRoots(t *testing.T) {
	col := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{TLS: true, HeaderAttribute: otlpHeaderAttr})
	for _, endpoint := range []string{col.Endpoint, strings.Replace(col.Endpoint, "127.0.0.1", "localhost", 1)} {
		t.Run(endpoint, func(t *testing.T) {
			out, err := otlpHelper(t, map[string]string{
				"SSL_CERT_FILE": col.CAFile, "OTLP_HELPER_ENDPOINT": endpoint, "OTLP_HELPER_KEY": otlpTestKey,
			})
			if err != nil || out != "ok 1 request\n" {
				t.Fatalf("helper: %v\n%s", err, out)
			}
		})
	}
	targets := otlpCollectorTargets()
	otlpCheckReceived(t, col.WaitMetrics(t, 2*len(targets), 10*time.Second), append(targets, targets...), otlpTestKey, "helper")
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
	fmt.Printf("ok %d request\n", res.requests)
}

// otlpHelper runs TestOTLPHelperProcess with env and returns its output
// less the test framework's.
func otlpHelper(t *testing.T, env map[string]string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOTLPHelperProcess$", "-test.count=1")
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var lines []string
	for _, l := range strings.SplitAfter(out.String(), "\n") {
		if l != "PASS\n" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, ""), err
}

// A partial success is a warning, one line without the key, and the request
// counts as sent. The collector never answers one, so a stand-in does.
func TestOTLPPartialSuccess(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	var keys []string
	var mu sync.Mutex
	colmetricspb.RegisterMetricsServiceServer(srv, otlpPartialServer{seen: func(ctx context.Context) {
		md, _ := metadata.FromIncomingContext(ctx)
		mu.Lock()
		keys = append(keys, md.Get("mackerel-api-key")...)
		mu.Unlock()
	}})
	go srv.Serve(l)
	t.Cleanup(srv.Stop)

	e := &otlpExporter{endpoint: l.Addr().String(), insecure: true, apiKey: otlpTestKey, timeout: otlpTestTimeout, version: "test", maxRequestBytes: 8000}
	res, err := e.send(context.Background(), otlpTestTargets(10), otlpTestNow)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{}
	for i := 1; i <= 3; i++ {
		want = append(want, fmt.Sprintf("otlp %s: request %d of 3: 2 data points rejected: invalid name for [key]: ecs_gostats.up ( point 1 )", e.endpoint, i))
	}
	if res.requests != 3 || !slices.Equal(res.warnings, want) {
		t.Errorf("%d requests, warnings:\n%s\nwant\n%s", res.requests, strings.Join(res.warnings, "\n"), strings.Join(want, "\n"))
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(keys, []string{otlpTestKey, otlpTestKey, otlpTestKey}) {
		t.Errorf("the stand-in got %d keys", len(keys))
	}
}

type otlpPartialServer struct {
	seen func(context.Context)
	colmetricspb.UnimplementedMetricsServiceServer
}

func (s otlpPartialServer) Export(ctx context.Context, _ *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	s.seen(ctx)
	return &colmetricspb.ExportMetricsServiceResponse{PartialSuccess: &colmetricspb.ExportMetricsPartialSuccess{
		RejectedDataPoints: 2, ErrorMessage: "invalid name for " + otlpTestKey + ":\n\tecs_gostats.up\n(\tpoint 1 )",
	}}, nil
}

// Sends that fail: each ends within the timeout (plus a margin) with one
// line that names the endpoint and not the key.
func TestOTLPSendFails(t *testing.T) {
	bin := otelcoltest.Bin(t)
	plain := otelcoltest.Start(t, bin, otelcoltest.Options{})
	tlsCol := otelcoltest.Start(t, bin, otelcoltest.Options{TLS: true})
	hung := otlpHungListener(t)
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
			if res.requests != 0 {
				t.Errorf("%d requests counted as sent", res.requests)
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
	hung := otlpHungListener(t)
	e := &otlpExporter{endpoint: hung, insecure: true, version: "test"}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.send(ctx, otlpCollectorTargets(), otlpTestNow)
	if err == nil || !strings.Contains(err.Error(), "DeadlineExceeded") || time.Since(start) > 500*time.Millisecond+otlpMargin {
		t.Errorf("error %v after %s", err, time.Since(start))
	}
}

// otlpHungListener is a loopback listener that accepts connections and
// never reads or writes: a receiver that hangs.
func otlpHungListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
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

// otlpCountingDialer dials TCP and adds what is written to n.
func otlpCountingDialer(n *atomic.Int64) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &otlpCountingConn{Conn: c, n: n}, nil
	}
}

type otlpCountingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *otlpCountingConn) Write(p []byte) (int, error) {
	k, err := c.Conn.Write(p)
	c.n.Add(int64(k))
	return k, err
}
