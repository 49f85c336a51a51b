// Package otlptest is an OTLP/gRPC endpoint for the tests of
// mackerel-plugin-ecs-gostats that need one to answer as they say (refuse,
// be unavailable, then accept) rather than the real Collector
// (internal/otelcoltest) that accepts what is right.
package otlptest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	colmetricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/collector/metrics/v1"
)

// ExportPath is the gRPC method an export calls.
const ExportPath = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

// Answer answers one export request: a response, or an error (a
// *connect.Error for a gRPC status).
type Answer func(r *connect.Request[colmetricspb.ExportMetricsServiceRequest]) (*colmetricspb.ExportMetricsServiceResponse, error)

// Serve serves exports on a loopback port in plain-text HTTP/2 (h2c, as an
// OTLP receiver without TLS does) for the test's duration, each answered by
// answer, and returns its HOST:PORT.
func Serve(t testing.TB, answer Answer) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(ExportPath, connect.NewUnaryHandler(ExportPath,
		func(_ context.Context, r *connect.Request[colmetricspb.ExportMetricsServiceRequest]) (*connect.Response[colmetricspb.ExportMetricsServiceResponse], error) {
			resp, err := answer(r)
			if err != nil {
				return nil, err
			}
			return connect.NewResponse(resp), nil
		}))
	srv := httptest.NewUnstartedServer(mux)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// CountingClient is an HTTP/2 client in plain text (h2c) that counts the
// connections it dials in dialed (when not nil) and adds what it writes to
// them, HTTP/2 framing and headers included, to written.
func CountingClient(dialed, written *atomic.Int64) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dialed != nil {
			dialed.Add(1)
		}
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, written}, nil
	}}}
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	k, err := c.Conn.Write(p)
	c.n.Add(int64(k))
	return k, err
}
