package main

// The OpenTelemetry Collector of the OTLP tests (tools/otelcol, OTELCOL_BIN;
// `make test` builds and passes it): startCollector for the plugin's
// integration tests, and a check of the harness itself.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otelcoltest"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// startCollector starts a collector from OTELCOL_BIN for the test (skipped
// without it, failed under CI) on a free loopback port, stopped by its PID
// at the test's end. It returns the receiver's host:port, a function that
// waits up to 10s for n resource metrics and returns all that arrived, and
// with opts.TLS the PEM file of the CA that signed the receiver's
// certificate. opts.HeaderAttribute names the data point attribute the
// received Mackerel-Api-Key header goes into.
func startCollector(t *testing.T, opts otelcoltest.Options) (endpoint string, received func(n int) []*metricspb.ResourceMetrics, caFile string) {
	t.Helper()
	c := otelcoltest.Start(t, otelcoltest.Bin(t), opts)
	return c.Endpoint, func(n int) []*metricspb.ResourceMetrics {
		t.Helper()
		return c.WaitMetrics(t, n, 10*time.Second)
	}, c.CAFile
}

// The harness: what a plain OTLP client sends arrives, with the header
// copied into the data points, over plain text and over TLS.
func TestCollectorHarness(t *testing.T) {
	const key = "harness-key"
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "TLS"}[useTLS]
		t.Run(name, func(t *testing.T) {
			endpoint, received, caFile := startCollector(t, otelcoltest.Options{TLS: useTLS, HeaderAttribute: "got.key"})
			creds := insecure.NewCredentials()
			if useTLS {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					t.Fatal(err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					t.Fatal("no certificate in " + caFile)
				}
				creds = credentials.NewTLS(&tls.Config{RootCAs: pool})
			}
			conn, err := grpc.NewClient("passthrough:///"+endpoint, grpc.WithTransportCredentials(creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ctx = metadata.AppendToOutgoingContext(ctx, "Mackerel-Api-Key", key)
			str := func(k, v string) *commonpb.KeyValue {
				return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
			}
			req := &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
				Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", name)}},
				ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{{
					Name: "harness.value", Unit: "1",
					Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{{
						TimeUnixNano: 1795613637e9, Value: &metricspb.NumberDataPoint_AsInt{AsInt: 42},
					}}}},
				}}}},
			}}}
			if _, err := colmetricspb.NewMetricsServiceClient(conn).Export(ctx, req); err != nil {
				t.Fatal(err)
			}
			got := received(1)
			if len(got) != 1 {
				t.Fatalf("%d resources received", len(got))
			}
			rm := got[0]
			attrs := rm.GetResource().GetAttributes()
			if len(attrs) != 1 || attrs[0].Key != "service.name" || attrs[0].Value.GetStringValue() != name {
				t.Errorf("resource attributes %v", attrs)
			}
			m := rm.GetScopeMetrics()[0].GetMetrics()[0]
			p := m.GetGauge().GetDataPoints()[0]
			if m.Name != "harness.value" || m.Unit != "1" || p.GetAsInt() != 42 || p.TimeUnixNano != 1795613637e9 {
				t.Errorf("metric %v", m)
			}
			if len(p.Attributes) != 1 || p.Attributes[0].Key != "got.key" || p.Attributes[0].Value.GetStringValue() != key {
				t.Errorf("data point attributes %v, want got.key=%s", p.Attributes, key)
			}
		})
	}
}
