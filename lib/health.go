package mpecsgostats

import "time"

// The run's own metrics ("scrape health"), printed on every run, even one
// whose discovery failed, unless --no-health: keys are
// "<prefix>_scrape.<graph>.<metric>". They sit outside "<prefix>.*", so no
// task key can collide with them and the "<prefix>.#.<graph>" definitions
// never match them.

// health is one run's figures.
type health struct {
	found, ok       int
	discoveryErrors int
	elapsed         time.Duration
	outputErrors    []outputErrors // of the outputs that count errors
	containerErrors int            // --container-metrics: stats calls that failed
}

// outputErrors is an output's errors figure.
type outputErrors struct {
	graph, label string // the output's health graph: "otlp", "OTLP"
	errors       int
}

// healthGraphDefs are the graphs of the health metrics, in the order
// README lists them; each output that counts errors adds one
// (outputErrors), after them.
var healthGraphDefs = []struct{ name, label, unit string }{
	{"targets", "Scrape Targets", "integer"},
	{"run", "Scrape Run", "seconds"},
	{"discovery", "Scrape Discovery", "integer"},
}

// healthMetricDefs are the health metrics, in the order they are printed,
// with their values.
var healthMetricDefs = []struct {
	graph, name, label string
	value              func(h health) float64
}{
	// targets discovered this run
	{"targets", "found", "Found", func(h health) float64 { return float64(h.found) }},
	// scraped and parsed
	{"targets", "ok", "OK", func(h health) float64 { return float64(h.ok) }},
	// found but not ok: refused, timed out, bad status or body, not scraped (deadline, or skipped for its key)
	{"targets", "failed", "Failed", func(h health) float64 { return float64(h.found - h.ok) }},
	// the whole run, discovery included
	{"run", "seconds", "Wall Time", func(h health) float64 { return h.elapsed.Seconds() }},
	// discovery calls that failed: the Docker daemon's or the task metadata endpoint's, the ECS agent's
	{"discovery", "errors", "Errors", func(h health) float64 { return float64(h.discoveryErrors) }},
}

// healthOf are the figures of one run: found targets, of which ok are
// those with a parsed answer among results and every other one failed,
// including one with no result (skipped for its key); and the number of
// discovery calls that failed. A run whose discovery failed has found 0
// and discoveryErrors > 0; a run that found nothing has found 0 and
// discoveryErrors 0. The run's time and the outputs' figures are set when
// known.
func healthOf(found int, results []result, discoveryErrors int) health {
	h := health{found: found, discoveryErrors: discoveryErrors}
	for _, r := range results {
		if r.cause == nil {
			h.ok++
		}
	}
	return h
}

// errorsOf is the errors figure of an output's graph: 0 when it has none
// this run (discovery failed before the outputs).
func (h health) errorsOf(graph string) int {
	for _, e := range h.outputErrors {
		if e.graph == graph {
			return e.errors
		}
	}
	return 0
}
