package mpecsgostats

import (
	"fmt"
	"io"
	"time"
)

// Outputs: what leaves the process. Only outputs (and Run, for option
// errors and the exit code) write to stdout and stderr.

// report is what a run produced, as every output reads it.
type report struct {
	time     time.Time
	results  []result // the keyed targets' scrapes, with their reported values
	passed   []passedOver
	warnings []string
	health   health
}

// writeWarnings prints each warning as one line on stderr.
func writeWarnings(w io.Writer, warnings []string) {
	for _, msg := range warnings {
		fmt.Fprintf(w, "warning: %s\n", msg)
	}
}
