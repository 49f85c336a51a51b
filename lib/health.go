package mpecsgostats

import (
	"time"

	mp "github.com/mackerelio/go-mackerel-plugin-helper"
)

// The run's own metrics ("scrape health"), printed on every run, even one
// whose discovery failed, unless --no-health: keys are
// "<prefix>_scrape.<graph>.<metric>". They sit outside "<prefix>.*", so no
// task key can collide with them and the "<prefix>.#.<graph>" definitions
// never match them.

// healthKeyPrefix is the first part of the health metric keys.
func healthKeyPrefix(prefix string) string { return prefix + "_scrape" }

// healthGraphDefs are the graphs of the health metrics, in the order
// README lists them.
var healthGraphDefs = []struct{ name, label, unit string }{
	{"targets", "Scrape Targets", "integer"},
	{"run", "Scrape Run", "seconds"},
	{"discovery", "Scrape Discovery", "integer"},
}

// healthMetricDefs are the health metrics, in the order they are printed.
var healthMetricDefs = []struct{ graph, name, label string }{
	{"targets", "found", "Found"},     // targets discovered this run
	{"targets", "ok", "OK"},           // scraped and parsed
	{"targets", "failed", "Failed"},   // found but not ok: refused, timed out, bad status or body, not scraped (deadline, or skipped for its key)
	{"run", "seconds", "Wall Time"},   // the whole run, discovery included
	{"discovery", "errors", "Errors"}, // discovery calls that failed: the Docker daemon's or the task metadata endpoint's, the ECS agent's
}

// healthLines are the health metrics of one run: found targets, of which
// ok are those with a parsed answer among results and every other one
// failed, including one with no result (skipped for its key); the number of
// discovery calls that failed; and the run's elapsed wall time. A run whose
// discovery failed has found 0 and discoveryErrors > 0; a run that found
// nothing has found 0 and discoveryErrors 0.
func healthLines(prefix string, found int, results []result, discoveryErrors int, elapsed time.Duration, now time.Time) []metricLine {
	ok := 0
	for _, r := range results {
		if r.cause == nil {
			ok++
		}
	}
	values := map[string]float64{
		"targets.found":    float64(found),
		"targets.ok":       float64(ok),
		"targets.failed":   float64(found - ok),
		"run.seconds":      elapsed.Seconds(),
		"discovery.errors": float64(discoveryErrors),
	}
	hp, ts := healthKeyPrefix(prefix), now.Unix()
	lines := make([]metricLine, 0, len(healthMetricDefs))
	for _, m := range healthMetricDefs {
		k := m.graph + "." + m.name
		lines = append(lines, metricLine{key: hp + "." + k, value: values[k], time: ts})
	}
	return lines
}

// healthGraphDefinitions are the meta mode graphs of the health metrics,
// "<prefix>_scrape.<graph>", labelled after the prefix as the task graphs
// are ("Gostats Scrape Targets").
func healthGraphDefinitions(prefix string) map[string]mp.Graphs {
	graphs := make(map[string]mp.Graphs, len(healthGraphDefs))
	for _, g := range healthGraphDefs {
		var metrics []mp.Metrics
		for _, m := range healthMetricDefs {
			if m.graph == g.name {
				metrics = append(metrics, mp.Metrics{Name: m.name, Label: m.label})
			}
		}
		graphs[healthKeyPrefix(prefix)+"."+g.name] = mp.Graphs{Label: title(prefix) + " " + g.label, Unit: g.unit, Metrics: metrics}
	}
	return graphs
}
