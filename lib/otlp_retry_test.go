package mpecsgostats

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	colmetricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/collector/metrics/v1"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlptest"
)

// TestOTLPWriteRetried: through the OTLP output, an export the endpoint
// was unavailable for and that it accepts on the retry (with the push's
// share of a 15 s --timeout) is no otlp.errors and no warning.
func TestOTLPWriteRetried(t *testing.T) {
	var calls atomic.Int64
	endpoint := otlptest.Serve(t, func(*connect.Request[colmetricspb.ExportMetricsServiceRequest]) (*colmetricspb.ExportMetricsServiceResponse, error) {
		if calls.Add(1) == 1 {
			return nil, connect.NewError(connect.CodeUnavailable, errors.New("try again"))
		}
		return &colmetricspb.ExportMetricsServiceResponse{}, nil
	})

	out, err := openOTLPOutput(options{OTLPEndpoint: endpoint, OTLPInsecure: true}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 15 * time.Second
	// the run's context, as run makes it: the whole --timeout, the push
	// starting when discovery and the scrapes have had their share
	ctx, cancel := context.WithTimeout(t.Context(), out.reserve(timeout))
	defer cancel()
	r := &report{time: otlpTestNow, results: []result{{target: target{Family: "web", ECSContainer: "app", PrivatePort: 8080}, values: handlerValues()}}}
	o, err := out.write(ctx, r)
	if err != nil || o.errors != 0 || len(o.warnings) != 0 || calls.Load() != 2 {
		t.Errorf("outcome %+v, %v after %d calls; want no errors, no warnings, 2 calls", o, err, calls.Load())
	}
}

// TestOTLPOnlyValuesFollowGraphs: the hidden values only OTLP sends go
// with their graphs under --graphs.
func TestOTLPOnlyValuesFollowGraphs(t *testing.T) {
	v := ofKeys(map[string]float64{"gc._next_gc": 1, "runtime._gomaxprocs": 2, "operation._heap_allocs_objects": 3, "runtime.goroutine_num": 4})
	keepGraphs(v, graphSet{"runtime": true})
	if got := byKeyAll(v); len(got) != 2 || got["runtime._gomaxprocs"] != 2 || got["runtime.goroutine_num"] != 4 {
		t.Errorf("--graphs runtime kept %v", got)
	}
}
