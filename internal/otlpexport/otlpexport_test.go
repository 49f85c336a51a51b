package otlpexport

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlptest"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/testenv"

	"connectrpc.com/connect"
	colmetricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/collector/metrics/v1"
	commonpb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/common/v1"
	metricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/metrics/v1"
	resourcepb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/resource/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// testKey stands for an API key; it must never show in an error or a
// warning.
const testKey = "test-key-0123456789abcdefghijklmnopqrstuv"

// resource is a resource whose one attribute, "i", has a value of n bytes
// starting with name. In an export request it takes n+18 bytes for n from
// 128 to 16,000: AnyValue{1: value} is n+3 (tag, 2-byte length, value),
// KeyValue{1: "i", 2: AnyValue} is 3 + 1+2+(n+3) = n+9, Resource{1: KeyValue}
// n+12, ResourceMetrics{1: Resource} n+15, and the request's field 1 holding
// it n+18.
func resource(name string, n int) *metricspb.ResourceMetrics {
	v := name + strings.Repeat("x", n-len(name))
	return &metricspb.ResourceMetrics{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
		{Key: "i", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}},
	}}}
}

// names are the first letters of the requests' resources, a request a
// string.
func names(reqs []*colmetricspb.ExportMetricsServiceRequest) []string {
	var out []string
	for _, r := range reqs {
		var s string
		for _, rm := range r.ResourceMetrics {
			s += rm.GetResource().GetAttributes()[0].GetValue().GetStringValue()[:1]
		}
		out = append(out, s)
	}
	return out
}

func TestRequests(t *testing.T) {
	const k1, k5 = 982, 4982 // 1,000 and 5,000 bytes in a request
	tests := []struct {
		name      string
		resources []*metricspb.ResourceMetrics
		limit     int
		want      []string // the resources of each request
		sizes     []int
	}{
		{"seven of 1,000 bytes under 3,000: three a request",
			[]*metricspb.ResourceMetrics{resource("a", k1), resource("b", k1), resource("c", k1), resource("d", k1),
				resource("e", k1), resource("f", k1), resource("g", k1)},
			3000, []string{"abc", "def", "g"}, []int{3000, 3000, 1000}},
		{"one byte less: two a request",
			[]*metricspb.ResourceMetrics{resource("a", k1), resource("b", k1), resource("c", k1), resource("d", k1),
				resource("e", k1), resource("f", k1), resource("g", k1)},
			2999, []string{"ab", "cd", "ef", "g"}, []int{2000, 2000, 2000, 1000}},
		{"one bigger than the limit goes alone",
			[]*metricspb.ResourceMetrics{resource("a", k1), resource("b", k5), resource("c", k1), resource("d", k1)},
			3000, []string{"a", "b", "cd"}, []int{1000, 5000, 2000}},
		{"bigger than the limit first",
			[]*metricspb.ResourceMetrics{resource("a", k5), resource("b", k1)},
			3000, []string{"a", "b"}, []int{5000, 1000}},
		{"all in one under the default",
			[]*metricspb.ResourceMetrics{resource("a", k1), resource("b", k5), resource("c", k1)},
			DefaultMaxRequestBytes, []string{"abc"}, []int{7000}},
		{"none", nil, DefaultMaxRequestBytes, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs := Requests(tt.resources, tt.limit)
			var sizes []int
			for _, r := range reqs {
				sizes = append(sizes, proto.Size(r))
			}
			if got := names(reqs); !slices.Equal(got, tt.want) || !slices.Equal(sizes, tt.sizes) {
				t.Errorf("requests %q of %v bytes, want %q of %v", got, sizes, tt.want, tt.sizes)
			}
		})
	}
}

// TestVTCodec: the generated marshaling makes the bytes protobuf's own
// makes, of every kind of field a run sends, after what dst held.
func TestVTCodec(t *testing.T) {
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	full := &metricspb.ResourceMetrics{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			str("service.name", "checkout"),
			{Key: "n", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -3}}},
			{Key: "b", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
			{Key: "d", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.25}}},
			{Key: "container.image.tags", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{
				ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{{Value: &commonpb.AnyValue_StringValue{StringValue: "1.2"}}}}}}},
		}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{
			Scope: &commonpb.InstrumentationScope{Name: "mackerel-plugin-ecs-gostats", Version: "0.1.0"},
			Metrics: []*metricspb.Metric{
				{Name: "go.goroutine.count", Unit: "{goroutine}", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{
					DataPoints: []*metricspb.NumberDataPoint{{TimeUnixNano: 1700000000000000000, Value: &metricspb.NumberDataPoint_AsInt{AsInt: 12}}}}}},
				{Name: "go.memory.allocated", Unit: "By", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
					AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE, IsMonotonic: true,
					DataPoints: []*metricspb.NumberDataPoint{{StartTimeUnixNano: 1, TimeUnixNano: 2, Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 1.5},
						Attributes: []*commonpb.KeyValue{str("go.memory.type", "stack")}}}}}},
			},
			SchemaUrl: "https://opentelemetry.io/schemas/1.44.0",
		}},
		SchemaUrl: "https://opentelemetry.io/schemas/1.44.0",
	}
	tests := []struct {
		name string
		req  *colmetricspb.ExportMetricsServiceRequest
	}{
		{"empty", &colmetricspb.ExportMetricsServiceRequest{}},
		{"every kind of field", &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{full, resource("a", 300)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := proto.Marshal(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := vtCodec{}.MarshalAppend([]byte("dst"), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, append([]byte("dst"), want...)) {
				t.Errorf("MarshalAppend: %x\nwant dst then %x", got, want)
			}
			back := &colmetricspb.ExportMetricsServiceRequest{}
			if err := proto.Unmarshal(got[3:], back); err != nil || !proto.Equal(back, tt.req) {
				t.Errorf("the bytes decode to %v (%v), want %v", back, err, tt.req)
			}
		})
	}
	if _, err := (vtCodec{}).Marshal(&colmetricspb.ExportMetricsServiceResponse{}); err == nil {
		t.Error("Marshal of a response: no error")
	}
}

// TestVTCodecResponse: the generated decoding reads what protobuf's own
// marshaling makes of an answer, and refuses what is not one.
func TestVTCodecResponse(t *testing.T) {
	partial := &colmetricspb.ExportMetricsServiceResponse{PartialSuccess: &colmetricspb.ExportMetricsPartialSuccess{
		RejectedDataPoints: 3, ErrorMessage: "3 data points without a name"}}
	wire, err := proto.Marshal(partial)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		b       []byte
		into    any
		want    *colmetricspb.ExportMetricsServiceResponse
		wantErr string
	}{
		{"empty: a full success", nil, &colmetricspb.ExportMetricsServiceResponse{}, &colmetricspb.ExportMetricsServiceResponse{}, ""},
		{"a partial success", wire, &colmetricspb.ExportMetricsServiceResponse{}, partial, ""},
		{"cut short", wire[:len(wire)-2], &colmetricspb.ExportMetricsServiceResponse{}, nil,
			"unmarshal into *v1.ExportMetricsServiceResponse: unexpected EOF"},
		{"not a protobuf message", wire, &struct{}{}, nil, "unmarshal into *struct {}: not a protobuf message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := vtCodec{}.Unmarshal(tt.b, tt.into)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !proto.Equal(tt.into.(*colmetricspb.ExportMetricsServiceResponse), tt.want) {
				t.Errorf("decoded %v (%v), want %v", tt.into, err, tt.want)
			}
		})
	}
}

func TestCheckEndpoint(t *testing.T) {
	for _, s := range []string{"localhost:4317", "otlp.mackerelio.com:4317", "[::1]:4317", "127.0.0.1:4317",
		"collector_1.internal:1", "[2001:db8::1]:65535", "a:4317"} {
		if err := CheckEndpoint(s); err != nil {
			t.Errorf("CheckEndpoint(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "http://x:4317", "https://host", "https://otlp.mackerelio.com:4317", "host:4317/v1",
		":4317", "host", "host:", "host:http", "host:0", "host:65536", "host:99999999999999999999", "host:-1", "host:+80",
		"[localhost]:4317", "[127.0.0.1]:4317", "::1:4317", "[::1]", "[::1:4317", "host]:4317", "user@host:4317",
		"host :4317", "ho st:4317", "host..com:4317", ".host:4317", "host:4317?x", "host:4317#x"} {
		err := CheckEndpoint(s)
		if err == nil {
			t.Errorf("CheckEndpoint(%q): no error", s)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "want HOST:PORT") || strings.ContainsAny(msg, "\n\r") {
			t.Errorf("CheckEndpoint(%q): %q", s, msg)
		}
	}
}

// received is what a test server got: one entry a request.
type received struct {
	header   http.Header
	proto    int // HTTP major version
	tls      bool
	resource []string // the first letters of the resources
	raw      []byte   // the request message, encoded
}

// server is an OTLP/gRPC receiver of connect's, on loopback: answer gives
// the answer to each request (call counts from 1).
type server struct {
	Endpoint string
	CAFile   string // the PEM of the certificate, with TLS
	mu       sync.Mutex
	got      []received
}

func (s *server) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func newServer(t *testing.T, useTLS bool, answer func(call int) (*colmetricspb.ExportMetricsServiceResponse, error)) *server {
	t.Helper()
	s := &server{}
	path, h := exportPath, connect.NewUnaryHandler(exportPath,
		func(ctx context.Context, r *connect.Request[colmetricspb.ExportMetricsServiceRequest]) (*connect.Response[colmetricspb.ExportMetricsServiceResponse], error) {
			raw, _ := proto.Marshal(r.Msg)
			var names []string
			for _, rm := range r.Msg.ResourceMetrics {
				names = append(names, rm.GetResource().GetAttributes()[0].GetValue().GetStringValue()[:1])
			}
			s.mu.Lock()
			s.got[len(s.got)-1].resource, s.got[len(s.got)-1].raw = names, raw
			call := len(s.got)
			s.mu.Unlock()
			resp, err := answer(call)
			if err != nil {
				return nil, err
			}
			return connect.NewResponse(resp), nil
		})
	mux := http.NewServeMux()
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.got = append(s.got, received{header: r.Header.Clone(), proto: r.ProtoMajor, tls: r.TLS != nil})
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	srv := httptest.NewUnstartedServer(mux)
	if useTLS {
		srv.EnableHTTP2 = true
		srv.StartTLS()
		s.CAFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(s.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
	} else {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		srv.Config.Protocols = &p
		srv.Start()
	}
	t.Cleanup(srv.Close)
	s.Endpoint = srv.Listener.Addr().String()
	return s
}

func ok(int) (*colmetricspb.ExportMetricsServiceResponse, error) {
	return &colmetricspb.ExportMetricsServiceResponse{}, nil
}

// threeResources make two requests under 3,000 bytes: "ab" and "c".
func threeResources() []*metricspb.ResourceMetrics {
	return []*metricspb.ResourceMetrics{resource("a", 982), resource("b", 982), resource("c", 1482)}
}

// checkLine fails the test when s is not one line, or has the key.
func checkLine(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, testKey) || strings.ContainsAny(s, "\r\n") {
		t.Errorf("%s %q has the key or more than one line", what, s)
	}
}

// Plain text is HTTP/2 with prior knowledge (h2c); the messages are gzip
// compressed, the key is in the Mackerel-Api-Key header only, the user agent
// is ours.
func TestSendInsecure(t *testing.T) {
	srv := newServer(t, false, ok)
	e := &Exporter{Endpoint: srv.Endpoint, Insecure: true, APIKey: testKey, UserAgent: "test-agent/1.0", MaxRequestBytes: 3000}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := e.Send(ctx, threeResources())
	if err != nil {
		t.Fatal(err)
	}
	// 2,000 + 1,500 bytes; each resource has no data points
	if res.Requests != 2 || res.Failed != 0 || res.Bytes != 3500 || res.Points != 0 || len(res.Warnings) != 0 {
		t.Errorf("result %+v, want 2 requests of 3,500 bytes", res)
	}
	got := srv.received()
	if len(got) != 2 {
		t.Fatalf("%d requests received, want 2", len(got))
	}
	for i, r := range got {
		if want := []string{"ab", "c"}[i]; strings.Join(r.resource, "") != want {
			t.Errorf("request %d: resources %q, want %q", i, r.resource, want)
		}
		if r.proto != 2 || r.tls {
			t.Errorf("request %d: HTTP/%d, TLS %v; want HTTP/2 in plain text", i, r.proto, r.tls)
		}
		checkHeaders(t, i, r)
	}
}

// checkHeaders: gzip, gRPC, the key in its header and nowhere else, our
// user agent.
func checkHeaders(t *testing.T, i int, r received) {
	t.Helper()
	if g := r.header.Get("Grpc-Encoding"); g != "gzip" {
		t.Errorf("request %d: grpc-encoding %q, want gzip", i, g)
	}
	if g := r.header.Get("Content-Type"); g != "application/grpc" && g != "application/grpc+proto" {
		t.Errorf("request %d: content-type %q, want gRPC", i, g)
	}
	if g := r.header.Values(APIKeyHeader); !slices.Equal(g, []string{testKey}) {
		t.Errorf("request %d: %s %q", i, APIKeyHeader, g)
	}
	if g := r.header.Get("User-Agent"); g != "test-agent/1.0" {
		t.Errorf("request %d: user agent %q", i, g)
	}
	for k, vs := range r.header {
		for _, v := range vs {
			if k != APIKeyHeader && strings.Contains(v, testKey) {
				t.Errorf("request %d: the key in header %s", i, k)
			}
		}
	}
	if bytes.Contains(r.raw, []byte(testKey)) {
		t.Errorf("request %d: the key in the message", i)
	}
}

// Without a key, no key header.
func TestSendNoKey(t *testing.T) {
	srv := newServer(t, false, ok)
	e := &Exporter{Endpoint: srv.Endpoint, Insecure: true}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.Send(ctx, threeResources()); err != nil {
		t.Fatal(err)
	}
	got := srv.received()
	if len(got) != 1 || got[0].header.Values(APIKeyHeader) != nil || !strings.HasPrefix(got[0].header.Get("User-Agent"), "grpc-go-connect/") {
		t.Errorf("received %+v", got)
	}
}

// TLS is verified against the system roots, with the server's certificate
// in them through SSL_CERT_FILE: Go reads it once per process, so the send
// runs in a process of its own (this test binary again, TestHelperProcess).
func TestSendTLSSystemRoots(t *testing.T) {
	srv := newServer(t, true, ok)
	out, err := testenv.HelperProcess(t, "TestHelperProcess", map[string]string{"SSL_CERT_FILE": srv.CAFile, "OTLPEXPORT_HELPER_ENDPOINT": srv.Endpoint})
	if err != nil || out != "ok 2 requests\n" {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	got := srv.received()
	if len(got) != 2 {
		t.Fatalf("%d requests received, want 2", len(got))
	}
	for i, r := range got {
		if r.proto != 2 || !r.tls {
			t.Errorf("request %d: HTTP/%d, TLS %v; want HTTP/2 over TLS", i, r.proto, r.tls)
		}
		checkHeaders(t, i, r)
	}

	// the same server in this process: its certificate is of no CA the
	// system has
	e := &Exporter{Endpoint: srv.Endpoint, APIKey: testKey}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := e.Send(ctx, threeResources())
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("error %v, want an unknown authority", err)
	} else {
		checkLine(t, "error", err.Error())
	}
	if res.Requests != 0 || res.Failed != 1 || len(srv.received()) != 2 {
		t.Errorf("result %+v, %d received", res, len(srv.received()))
	}
}

// mackerel-agent runs its plugins with GODEBUG=http2client=0, which turns
// off net/http's own HTTP/2 client: the send still speaks HTTP/2, in plain
// text and over TLS.
func TestSendHTTP2ClientOff(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprint("TLS=", useTLS), func(t *testing.T) {
			srv := newServer(t, useTLS, ok)
			env := map[string]string{"GODEBUG": "http2client=0", "OTLPEXPORT_HELPER_ENDPOINT": srv.Endpoint}
			if useTLS {
				env["SSL_CERT_FILE"] = srv.CAFile
			} else {
				env["OTLPEXPORT_HELPER_INSECURE"] = "1"
			}
			out, err := testenv.HelperProcess(t, "TestHelperProcess", env)
			if err != nil || out != "ok 2 requests\n" {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			got := srv.received()
			if len(got) != 2 {
				t.Fatalf("%d requests received, want 2", len(got))
			}
			for i, r := range got {
				if r.proto != 2 || r.tls != useTLS {
					t.Errorf("request %d: HTTP/%d, TLS %v", i, r.proto, r.tls)
				}
				checkHeaders(t, i, r)
			}
		})
	}
}

// TestHelperProcess sends threeResources to OTLPEXPORT_HELPER_ENDPOINT, with
// TLS and the system roots or, given OTLPEXPORT_HELPER_INSECURE, in plain
// text, and prints the outcome; without an endpoint, it does nothing.
func TestHelperProcess(t *testing.T) {
	endpoint := os.Getenv("OTLPEXPORT_HELPER_ENDPOINT")
	if endpoint == "" {
		return
	}
	e := &Exporter{Endpoint: endpoint, Insecure: os.Getenv("OTLPEXPORT_HELPER_INSECURE") != "", APIKey: testKey,
		UserAgent: "test-agent/1.0", MaxRequestBytes: 3000}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := e.Send(ctx, threeResources())
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Printf("ok %d requests\n", res.Requests)
}

// A partial success is a warning, one line without the key, and the
// request counts as sent.
func TestSendPartialSuccess(t *testing.T) {
	srv := newServer(t, false, func(int) (*colmetricspb.ExportMetricsServiceResponse, error) {
		return &colmetricspb.ExportMetricsServiceResponse{PartialSuccess: &colmetricspb.ExportMetricsPartialSuccess{
			RejectedDataPoints: 2, ErrorMessage: "invalid name for " + testKey + ":\n\tecs_gostats.up\n(\tpoint 1 )",
		}}, nil
	})
	e := &Exporter{Endpoint: srv.Endpoint, Insecure: true, APIKey: testKey, MaxRequestBytes: 3000}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := e.Send(ctx, threeResources())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"otlp " + srv.Endpoint + ": request 1 of 2: 2 data points rejected: invalid name for [key]: ecs_gostats.up ( point 1 )",
		"otlp " + srv.Endpoint + ": request 2 of 2: 2 data points rejected: invalid name for [key]: ecs_gostats.up ( point 1 )",
	}
	if res.Requests != 2 || res.Failed != 0 || !slices.Equal(res.Warnings, want) {
		t.Errorf("result %+v\nwant warnings\n%s", res, strings.Join(want, "\n"))
	}
}

// retryInfo is a google.rpc.RetryInfo detail of delay, written by hand:
// RetryInfo{retry_delay = 1: Duration{seconds = 1, nanos = 2}}.
func retryInfo(t *testing.T, delay time.Duration) *connect.ErrorDetail {
	t.Helper()
	var dur []byte
	dur = protowire.AppendTag(dur, 1, protowire.VarintType)
	dur = protowire.AppendVarint(dur, uint64(delay/time.Second))
	dur = protowire.AppendTag(dur, 2, protowire.VarintType)
	dur = protowire.AppendVarint(dur, uint64(delay%time.Second))
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, dur)
	d, err := connect.NewErrorDetail(&anypb.Any{TypeUrl: "type.googleapis.com/google.rpc.RetryInfo", Value: b})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// failing answers the first `fails` calls with code (and a retry delay
// when delay > 0) and the rest with success. The error quotes the key, as
// a server may.
func failing(t *testing.T, fails int, code connect.Code, delay time.Duration) func(int) (*colmetricspb.ExportMetricsServiceResponse, error) {
	return func(call int) (*colmetricspb.ExportMetricsServiceResponse, error) {
		if call > fails {
			return &colmetricspb.ExportMetricsServiceResponse{}, nil
		}
		err := connect.NewError(code, errors.New("try again, "+testKey))
		if delay > 0 {
			err.AddDetail(retryInfo(t, delay))
		}
		return nil, err
	}
}

func TestSendRetry(t *testing.T) {
	tests := []struct {
		name     string
		answer   func(t *testing.T) func(int) (*colmetricspb.ExportMetricsServiceResponse, error)
		timeout  time.Duration
		calls    int           // requests the server gets
		err      string        // "" for none
		min, max time.Duration // the send's time
	}{
		{"unavailable, then accepted: retried", func(t *testing.T) func(int) (*colmetricspb.ExportMetricsServiceResponse, error) {
			return failing(t, 1, connect.CodeUnavailable, 0)
		}, 5 * time.Second, 2, "", 100 * time.Millisecond, 2 * time.Second},
		{"unavailable twice: one retry only", func(t *testing.T) func(int) (*colmetricspb.ExportMetricsServiceResponse, error) {
			return failing(t, 2, connect.CodeUnavailable, 0)
		}, 5 * time.Second, 2, "otlp %s: Unavailable: try again, [key]", 100 * time.Millisecond, 2 * time.Second},
		{"unavailable with 1.5 s left: not retried", func(t *testing.T) func(int) (*colmetricspb.ExportMetricsServiceResponse, error) {
			return failing(t, 1, connect.CodeUnavailable, 0)
		}, 1500 * time.Millisecond, 1, "otlp %s: Unavailable: try again, [key]", 0, time.Second},
		{"unavailable, retry after the server's delay", func(t *testing.T) func(int) (*colmetricspb.ExportMetricsServiceResponse, error) {
			return failing(t, 1, connect.CodeUnavailable, 700*time.Millisecond)
		}, 5 * time.Second, 2, "", 700 * time.Millisecond, 2 * time.Second},
		{"resource exhausted with a delay: retried after it", func(t *testing.T) func(int) (*colmetricspb.ExportMetricsServiceResponse, error) {
			return failing(t, 1, connect.CodeResourceExhausted, 1500*time.Millisecond)
		}, 5 * time.Second, 2, "", 1500 * time.Millisecond, 3 * time.Second},
		{"resource exhausted without a delay: not retried", func(t *testing.T) func(int) (*colmetricspb.ExportMetricsServiceResponse, error) {
			return failing(t, 1, connect.CodeResourceExhausted, 0)
		}, 5 * time.Second, 1, "otlp %s: ResourceExhausted: try again, [key]", 0, time.Second},
		{"a delay that leaves less than 2 s: not retried", func(t *testing.T) func(int) (*colmetricspb.ExportMetricsServiceResponse, error) {
			return failing(t, 1, connect.CodeResourceExhausted, 3500*time.Millisecond)
		}, 5 * time.Second, 1, "otlp %s: ResourceExhausted: try again, [key]", 0, time.Second},
		{"a delay past the deadline: not retried", func(t *testing.T) func(int) (*colmetricspb.ExportMetricsServiceResponse, error) {
			return failing(t, 1, connect.CodeUnavailable, time.Minute)
		}, 5 * time.Second, 1, "otlp %s: Unavailable: try again, [key]", 0, time.Second},
		{"unauthenticated: not retried", func(t *testing.T) func(int) (*colmetricspb.ExportMetricsServiceResponse, error) {
			return failing(t, 1, connect.CodeUnauthenticated, 0)
		}, 5 * time.Second, 1, "otlp %s: Unauthenticated: try again, [key]", 0, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, false, tt.answer(t))
			e := &Exporter{Endpoint: srv.Endpoint, Insecure: true, APIKey: testKey}
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			start := time.Now()
			res, err := e.Send(ctx, threeResources())
			elapsed := time.Since(start)
			got := srv.received()
			if len(got) != tt.calls {
				t.Errorf("%d requests received, want %d", len(got), tt.calls)
			}
			if tt.err == "" {
				if err != nil || res.Requests != 1 || res.Failed != 0 || res.Bytes != 3500 {
					t.Errorf("result %+v, error %v; want 1 request accepted, none failed", res, err)
				}
			} else {
				if want := fmt.Sprintf(tt.err, srv.Endpoint); err == nil || err.Error() != want {
					t.Errorf("error %v, want %s", err, want)
				}
				if res.Requests != 0 || res.Failed != 1 {
					t.Errorf("result %+v, want 1 failed", res)
				}
			}
			if elapsed < tt.min || elapsed > tt.max {
				t.Errorf("took %s, want %s to %s", elapsed, tt.min, tt.max)
			}
		})
	}
}

// A hung endpoint: the send ends at ctx's deadline, with no retry past it.
func TestSendHung(t *testing.T) {
	hung := testenv.HungListener(t)
	for _, insecure := range []bool{true, false} {
		t.Run(fmt.Sprint("insecure=", insecure), func(t *testing.T) {
			e := &Exporter{Endpoint: hung, Insecure: insecure, APIKey: testKey, MaxRequestBytes: 3000}
			const timeout = time.Second
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			res, err := e.Send(ctx, threeResources())
			elapsed := time.Since(start)
			if err == nil || !strings.HasPrefix(err.Error(), "otlp "+hung+": request 1 of 2: DeadlineExceeded: ") ||
				!strings.HasSuffix(err.Error(), " (and 1 more requests failed)") {
				t.Errorf("error %v", err)
			} else {
				checkLine(t, "error", err.Error())
			}
			if res.Requests != 0 || res.Failed != 2 {
				t.Errorf("result %+v", res)
			}
			if elapsed < timeout-50*time.Millisecond || elapsed > timeout+500*time.Millisecond {
				t.Errorf("took %s, timeout %s", elapsed, timeout)
			}
		})
	}
}

// Nothing listens: Unavailable, with the dial's error and not the URL.
func TestSendRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e := &Exporter{Endpoint: addr, Insecure: true, APIKey: testKey}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res, err := e.Send(ctx, threeResources())
	want := "otlp " + addr + ": Unavailable: dial tcp " + addr + ": connect: connection refused"
	if err == nil || err.Error() != want || res.Failed != 1 {
		t.Errorf("error %v, result %+v; want %s", err, res, want)
	}
}

// An HTTPClient of the caller's carries the requests; what goes over its
// connection (HTTP/2 framing and headers included) is less than half the
// requests' 3,500 bytes, mostly one letter repeated: gzip.
func TestSendHTTPClient(t *testing.T) {
	srv := newServer(t, false, ok)
	var dialed, wire atomic.Int64
	hc := otlptest.CountingClient(&dialed, &wire)
	defer hc.CloseIdleConnections()
	e := &Exporter{Endpoint: srv.Endpoint, Insecure: true, MaxRequestBytes: 3000, HTTPClient: hc}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res, err := e.Send(ctx, threeResources()); err != nil || res.Requests != 2 {
		t.Fatalf("result %+v, error %v", res, err)
	}
	if n := dialed.Load(); n != 1 {
		t.Errorf("dialed %d times, want once (both requests on one HTTP/2 connection)", n)
	}
	if n := wire.Load(); n <= 0 || n >= 3500/2 {
		t.Errorf("%d bytes written for requests of 3,500: not compressed", n)
	}
}

// An empty send sends nothing.
func TestSendNothing(t *testing.T) {
	e := &Exporter{Endpoint: "127.0.0.1:1", Insecure: true}
	if res, err := e.Send(context.Background(), nil); err != nil || res.Requests != 0 || res.Failed != 0 {
		t.Errorf("result %+v, error %v", res, err)
	}
}
