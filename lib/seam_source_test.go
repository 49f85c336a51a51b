package mpecsgostats

import (
	"context"
	"fmt"
	"time"
)

// staticSource is a source of the tests' own, to show what a new source
// takes: this file, and one line in a run's parts (seams_test.go). Its
// targets are listed in advance; it says everything later stages need of
// them, and why a --key placeholder has no value.
type staticSource struct {
	targets []target
	timeout time.Duration // the time the run gave it
}

func (s staticSource) discover(ctx context.Context) (found, error) {
	var f found
	for _, t := range s.targets {
		t.HostName = "static-host"
		t.gap = func(placeholder string) keyGap {
			return keyGap{why: "the static list gives it no " + placeholder}
		}
		f.targets = append(f.targets, t)
	}
	f.warnings = append(f.warnings, fmt.Sprintf("static source: given %s", s.timeout))
	return f, nil
}
