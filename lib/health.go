package mpecsgostats

import "time"

// The run's own metrics ("scrape health"), printed on every run, even one
// whose discovery failed, unless --no-health: keys are
// "<prefix>_scrape.<graph>.<metric>". They sit outside "<prefix>.*", so no
// task key can collide with them and the "<prefix>.#.<graph>" definitions
// never match them.

// healthGraphDefs are the graphs of the health metrics, in the order
// README lists them.
var healthGraphDefs = []struct{ name, label, unit string }{
	{"targets", "Scrape Targets", "integer"},
	{"run", "Scrape Run", "seconds"},
	{"discovery", "Scrape Discovery", "integer"},
	{"otlp", "Scrape OTLP", "integer"}, // with otlp in --output only
}

// healthMetricDefs are the health metrics, in the order they are printed.
var healthMetricDefs = []struct{ graph, name, label string }{
	{"targets", "found", "Found"},     // targets discovered this run
	{"targets", "ok", "OK"},           // scraped and parsed
	{"targets", "failed", "Failed"},   // found but not ok: refused, timed out, bad status or body, not scraped (deadline, or skipped for its key)
	{"run", "seconds", "Wall Time"},   // the whole run, discovery included
	{"discovery", "errors", "Errors"}, // discovery calls that failed: the Docker daemon's or the task metadata endpoint's, the ECS agent's
	{"otlp", "errors", "Errors"},      // OTLP export requests that failed (with otlp in --output only)
}

// health is one run's figures.
type health struct {
	found, ok       int
	discoveryErrors int
	elapsed         time.Duration
	otlp            bool // otlp in --output: otlpErrors is a figure
	otlpErrors      int
}

// healthOf are the figures of one run: found targets, of which ok are
// those with a parsed answer among results and every other one failed,
// including one with no result (skipped for its key); and the number of
// discovery calls that failed. A run whose
// discovery failed has found 0 and discoveryErrors > 0; a run that found
// nothing has found 0 and discoveryErrors 0. The run's time and the OTLP
// figure are set when known.
func healthOf(found int, results []result, discoveryErrors int) health {
	h := health{found: found, discoveryErrors: discoveryErrors}
	for _, r := range results {
		if r.cause == nil {
			h.ok++
		}
	}
	return h
}

// values are the figures under their "<graph>.<metric>" keys.
func (h health) values() map[string]float64 {
	return map[string]float64{
		"targets.found":    float64(h.found),
		"targets.ok":       float64(h.ok),
		"targets.failed":   float64(h.found - h.ok),
		"run.seconds":      h.elapsed.Seconds(),
		"discovery.errors": float64(h.discoveryErrors),
		"otlp.errors":      float64(h.otlpErrors),
	}
}
