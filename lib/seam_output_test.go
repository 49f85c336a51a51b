package mpecsgostats

import (
	"context"
	"fmt"
	"io"
	"time"
)

// captureOutput is an output of the tests' own, to show what a new output
// takes: this file, and one line in a run's parts (seams_test.go). It
// writes one line per target it is given, keyed or not, and counts the
// failed targets as its errors.
type captureOutput struct{ w io.Writer }

func openCaptureOutput(_ options, _ string, stdout io.Writer) (output, error) {
	return captureOutput{w: stdout}, nil
}

func (captureOutput) graphs() map[string]graph {
	return map[string]graph{"capture.#": {Label: "Capture", Unit: "integer", Metrics: []graphMetric{{Name: "up", Label: "Up"}}}}
}
func (captureOutput) labels() bool                                { return true }
func (captureOutput) needsKey() bool                              { return false }
func (captureOutput) reserve(timeout time.Duration) time.Duration { return timeout / 5 }
func (captureOutput) errorsGraph() (name, label string)           { return "capture", "Capture" }

func (o captureOutput) write(_ context.Context, r *report) (outcome, error) {
	var res outcome
	for _, t := range r.results {
		up := t.cause == nil
		if !up {
			res.errors++
		}
		fmt.Fprintf(o.w, "capture %s key=%q host=%s up=%t goroutines=%v\n", t.target.ContainerName, t.key, t.target.HostName, up, t.values[goroutineNum])
	}
	return res, nil
}
