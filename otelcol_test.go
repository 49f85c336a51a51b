package main

// The OpenTelemetry Collector of the OTLP tests (tools/otelcol, OTELCOL_BIN;
// `make test` builds and passes it): startCollector for the plugin's
// integration tests, and a check of the harness itself.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otelcoltest"
	colmetricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/collector/metrics/v1"
	commonpb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/common/v1"
	metricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/metrics/v1"
	resourcepb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/resource/v1"
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
			// gRPC over HTTP/2: TLS with the CA, or plain text (h2c)
			var protos http.Protocols
			tr := &http.Transport{Protocols: &protos}
			url := "http://" + endpoint
			if useTLS {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					t.Fatal(err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					t.Fatal("no certificate in " + caFile)
				}
				tr.TLSClientConfig = &tls.Config{RootCAs: pool}
				protos.SetHTTP2(true)
				url = "https://" + endpoint
			} else {
				protos.SetUnencryptedHTTP2(true)
			}
			defer tr.CloseIdleConnections()
			client := connect.NewClient[colmetricspb.ExportMetricsServiceRequest, colmetricspb.ExportMetricsServiceResponse](
				&http.Client{Transport: tr}, url+"/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", connect.WithGRPC())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
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
			r := connect.NewRequest(req)
			r.Header().Set("Mackerel-Api-Key", key)
			if _, err := client.CallUnary(ctx, r); err != nil {
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
