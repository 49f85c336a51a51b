package mpecsgostats

import "time"

// Rates: counters become per-minute rates against the last run's, and the
// values a format asks to derive between runs (gc rates) are computed.

// maxRateGap is the longest time a rate is computed over, as
// go-mackerel-plugin-helper (and so mackerel-plugin-gostats) does.
const maxRateGap = 600 // seconds

// rates sets each answered result's reported values, gauges as read and
// counters as per-minute rates against last, and returns the state for the
// next run. A rate is given only when its key had the same target at the
// last run (never across two tasks), between 1 and maxRateGap seconds ago,
// and the counter did not go down (the process restarted): never negative.
// A target that failed this run keeps its last counters, so its rates
// resume at its next answer.
func rates(results []result, last state, now time.Time) state {
	next := state{Version: stateVersion, Tasks: map[string]taskState{}}
	ts := now.Unix()
	for i := range results {
		r := &results[i]
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
		values := withGCRates(r.values, prev.Counters, rec.Counters, sameTarget, gap)
		r.reported = make(map[string]float64, len(values))
		for _, m := range metricDefs {
			v, ok := values[m.key()]
			if !ok {
				continue
			}
			if m.diff {
				rec.Counters[m.key()] = v
				lastV, had := prev.Counters[m.key()]
				if !sameTarget || !had || gap < 1 || gap > maxRateGap || v < lastV {
					continue
				}
				v = (v - lastV) * 60 / float64(gap)
			}
			r.reported[m.key()] = v
		}
		next.Tasks[r.key] = rec
	}
	return next
}

// withGCRates returns values with gc.gc_per_second (collections per second)
// and gc.gc_pause_per_second (milliseconds of pause per minute: what the
// handler's field reads when it is scraped once a minute) added when the
// hidden counters allow, and records those counters in next. prev are the
// key's counters at the last run, gap seconds ago; sameTarget tells whether
// the same target had the key then. As for every rate there is no value
// across two targets, over a gap out of 1..maxRateGap seconds, or when
// either counter went down (the process restarted). values of a target
// without hidden counters (the handler's, which sends both fields itself)
// are returned as they are.
func withGCRates(values, prev, next map[string]float64, sameTarget bool, gap int64) map[string]float64 {
	num, hasNum := values[hiddenNumGC]
	pause, hasPause := values[hiddenPauseTotal]
	if !hasNum || !hasPause {
		return values
	}
	next[hiddenNumGC], next[hiddenPauseTotal] = num, pause
	lastNum, hadNum := prev[hiddenNumGC]
	lastPause, hadPause := prev[hiddenPauseTotal]
	if !sameTarget || !hadNum || !hadPause || gap < 1 || gap > maxRateGap || num < lastNum || pause < lastPause {
		return values
	}
	out := make(map[string]float64, len(values)+2)
	for k, v := range values {
		out[k] = v
	}
	out["gc.gc_per_second"] = (num - lastNum) / float64(gap)
	out["gc.gc_pause_per_second"] = (pause - lastPause) / 1e6 * 60 / float64(gap)
	return out
}
