package mpecsgostats

import (
	"bytes"
	"compress/gzip"
	"context"
	"sync/atomic"
	"testing"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otelcoltest"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlpexport"
	commonpb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/common/v1"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlptest"
	"google.golang.org/protobuf/proto"
)

// BenchmarkOTLPEncode1000 makes the export requests of a run of 1,000
// targets and encodes them, as the send does before gzip, and reports the
// requests, their bytes, and the bytes gzip makes of them.
func BenchmarkOTLPEncode1000(b *testing.B) {
	targets := otlpTestTargets(1000)
	scope := &commonpb.InstrumentationScope{Name: otlpScopeName, Version: "bench"}
	var requests, size, zipped int
	b.ReportAllocs()
	for b.Loop() {
		requests, size = 0, 0
		for _, r := range otlpRequests(targets, otlpTestNow, scope, otlpMaxRequestBytes) {
			buf, err := proto.Marshal(r)
			if err != nil {
				b.Fatal(err)
			}
			requests++
			size += len(buf)
		}
	}
	b.StopTimer()
	for _, r := range otlpRequests(targets, otlpTestNow, scope, otlpMaxRequestBytes) {
		buf, _ := proto.Marshal(r)
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		w.Write(buf)
		w.Close()
		zipped += z.Len()
	}
	b.ReportMetric(float64(requests), "requests/op")
	b.ReportMetric(float64(size), "request-bytes/op")
	b.ReportMetric(float64(zipped), "gzip-bytes/op")
}

// BenchmarkOTLPSend1000 sends a run of 1,000 targets to the real collector
// (OTELCOL_BIN) over a new plain-text connection, as a run does: making the
// requests, gzip, gRPC over HTTP/2, and the collector's own handling until it answers.
// wire-bytes are what the exporter wrote to the connection.
func BenchmarkOTLPSend1000(b *testing.B) {
	col := otelcoltest.Start(b, otelcoltest.Bin(b), otelcoltest.Options{})
	targets := otlpTestTargets(1000)
	var wire atomic.Int64
	e := &otlpExporter{endpoint: col.Endpoint, insecure: true, apiKey: otlpTestKey, timeout: 0, version: "bench",
		httpClient: otlptest.CountingClient(nil, &wire)}
	var res otlpexport.Result
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if res, err = e.send(context.Background(), targets, otlpTestNow); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.Requests), "requests/op")
	b.ReportMetric(float64(res.Bytes), "request-bytes/op")
	b.ReportMetric(float64(wire.Load())/float64(b.N), "wire-bytes/op")
}
