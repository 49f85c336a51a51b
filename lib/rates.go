package mpecsgostats

import "time"

// Rates: counters become per-minute rates against the last run's, and each
// format derives what takes two of its answers (gc rates).

// maxRateGap is the longest time a rate is computed over, as
// go-mackerel-plugin-helper (and so mackerel-plugin-gostats) does.
const maxRateGap = 600 // seconds

// rates are the values each result reports, in results' order — gauges as
// read, counters as per-minute rates against last, and what its format
// derives — and the state for the next run. A rate is given only when its
// key had the same target at the last run (never across two tasks),
// between 1 and maxRateGap seconds ago, and the counter did not go down
// (the process restarted): never negative. A target that failed this run
// keeps its last counters, so its rates resume at its next answer.
func rates(results []result, last state, now time.Time) ([]values, state) {
	reported := make([]values, len(results))
	next := state{Version: stateVersion, Tasks: map[string]taskState{}}
	ts := now.Unix()
	for i, r := range results {
		if r.key == "" {
			continue // no key, no Mackerel values: sent over OTLP only
		}
		prev, hadKey := last.Tasks[r.key]
		sameTarget := hadKey && prev.Target == r.target.identity()
		if r.cause != nil {
			if sameTarget {
				next.Tasks[r.key] = prev
			}
			continue
		}
		rec := taskState{Target: r.target.identity(), Time: ts, Counters: map[string]float64{}}
		gap := ts - prev.Time
		inRange := sameTarget && gap >= 1 && gap <= maxRateGap
		lastCounters := values{}
		for _, m := range metrics() {
			if c, ok := prev.Counters[m.key()]; ok {
				lastCounters[m] = c
			}
		}
		out := make(values, len(r.values))
		for m, v := range r.values {
			if !m.def().diff {
				out[m] = v
				continue
			}
			rec.Counters[m.key()] = v
			lastV, had := lastCounters[m]
			if inRange && had && v >= lastV && !m.def().hidden {
				out[m] = (v - lastV) * 60 / float64(gap)
			}
		}
		if inRange && r.how.format != nil {
			for m, v := range r.how.format.derive(r.values, lastCounters, float64(gap)) {
				out[m] = v
			}
		}
		reported[i] = out
		next.Tasks[r.key] = rec
	}
	return reported, next
}
