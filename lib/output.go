package mpecsgostats

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Outputs: what leaves the process. Only outputs (and run, for option
// errors, warnings and the exit code) write to stdout and stderr. A new
// output is a file with a type that implements output, and one line in
// the outputs of Do.

// report is what a run produced, as every output reads it.
type report struct {
	time     time.Time
	results  []result // the keyed targets' scrapes, with their reported values
	passed   []passedOver
	warnings []string
	health   health
	// containers: with --container-metrics (containerMetrics), each
	// measured container's own use
	containers       containerMeasurements
	containerMetrics bool
	// labels: an output labels series (--list shows each target's service
	// then); services: what each container's environment said of its
	// service, by container id (serviceid.go).
	labels   bool
	services map[string]serviceEnv
}

// service is the service identity of a result's target.
func (r *report) service(t target) service {
	if s, ok := r.services[t.ContainerID]; ok {
		return serviceOf(t, &s)
	}
	return serviceOf(t, nil)
}

// An output sends a run's report somewhere.
type output interface {
	// graphs are its graph definitions for mackerel-agent's meta mode, nil
	// for none.
	graphs() map[string]graph
	// labels tells whether it labels a target's series with its task's
	// identity (host name, container instance, service name).
	labels() bool
	// needsKey tells whether it sends a target only under its metric key:
	// then key problems are its warnings, and a target without a key is
	// not scraped for it.
	needsKey() bool
	// reserve is the part of --timeout it keeps for itself, after
	// discovery and the scrapes.
	reserve(timeout time.Duration) time.Duration
	// write sends the report. Failures it can live with are warnings and
	// its errors figure; err ends the run (exit status 1, no state saved).
	write(ctx context.Context, r *report) (o outcome, err error)
	// errorsGraph names the health graph of its errors figure ("otlp" and
	// its label "OTLP"), "" when it counts none.
	errorsGraph() (name, label string)
}

// outcome is what an output's write did.
type outcome struct {
	errors   int // requests that failed: the health line of errorsGraph
	warnings []string
}

// outputKind is an --output value and how to make its output.
type outputKind struct {
	name string
	// open makes the output from the options, or says what is wrong with
	// them (a usage error: exit status 2).
	open func(opts options, version string, stdout io.Writer) (output, error)
	// unused, when set, checks the options when the output is not in
	// --output: its own flags are errors then.
	unused func(opts options) error
}

// outputs are the outputs of a run, in the order of the kinds.
type outputs []output

// openOutputs makes the outputs --output names.
func openOutputs(kinds []outputKind, opts options, version string, stdout io.Writer) (outputs, error) {
	var outs outputs
	for _, k := range kinds {
		if !slices.Contains(opts.outputs, k.name) {
			if k.unused != nil {
				if err := k.unused(opts); err != nil {
					return nil, err
				}
			}
			continue
		}
		o, err := k.open(opts, version, stdout)
		if err != nil {
			return nil, err
		}
		outs = append(outs, o)
	}
	return outs, nil
}

// parseOutputs checks an --output list against the kinds.
func parseOutputs(list string, kinds []outputKind) ([]string, error) {
	var names, valid []string
	for _, k := range kinds {
		valid = append(valid, k.name)
	}
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimSpace(o)
		if !slices.Contains(valid, o) {
			return nil, fmt.Errorf("--output %q: unknown output %q (valid: %s)", list, o, strings.Join(valid, ","))
		}
		names = append(names, o)
	}
	return names, nil
}

// reserve is the most any output keeps of timeout.
func (outs outputs) reserve(timeout time.Duration) time.Duration {
	var d time.Duration
	for _, o := range outs {
		d = max(d, o.reserve(timeout))
	}
	return d
}

// label tells whether an output labels series with the task's identity.
func (outs outputs) label() bool {
	return slices.ContainsFunc(outs, output.labels)
}

// needKeys tells whether an output sends targets under their keys only.
func (outs outputs) needKeys() bool {
	return slices.ContainsFunc(outs, output.needsKey)
}

// keep drops the targets without a key when no output sends them (they
// have nowhere to go); a target with a bad label stays, to be reported.
func (outs outputs) keep(targets []keyed) []keyed {
	if slices.ContainsFunc(outs, func(o output) bool { return !o.needsKey() }) {
		return targets
	}
	return slices.DeleteFunc(targets, func(k keyed) bool { return k.key == "" && k.bad == nil })
}

// write has each output send r, and returns their errors figures, in
// order. The first error ends the writing.
func (outs outputs) write(ctx context.Context, r *report) ([]outputErrors, error) {
	var errs []outputErrors
	for _, o := range outs {
		res, err := o.write(ctx, r)
		if err != nil {
			return errs, err
		}
		r.warnings = append(r.warnings, res.warnings...)
		if name, label := o.errorsGraph(); name != "" {
			errs = append(errs, outputErrors{graph: name, label: label, errors: res.errors})
		}
	}
	return errs, nil
}

// writeWarnings prints each warning as one line on stderr.
func writeWarnings(w io.Writer, warnings []string) {
	for _, msg := range warnings {
		fmt.Fprintf(w, "warning: %s\n", msg)
	}
}
