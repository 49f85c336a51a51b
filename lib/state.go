package mpecsgostats

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The state file is the plugin's own record between runs: for each task key,
// which target had it and that target's counters at the last run. This file
// is the only code that knows its layout.

// stateVersion marks the layout below. A file of another layout (such as the
// go-mackerel-plugin-helper state earlier versions kept) counts as no state:
// it costs one run of rates.
const stateVersion = 1

// maxRateGap is the longest time a rate is computed over, as
// go-mackerel-plugin-helper (and so mackerel-plugin-gostats) does.
const maxRateGap = 600 // seconds

type state struct {
	Version int                  `json:"version"`
	Tasks   map[string]taskState `json:"tasks"`
	// Slots: for each key with {slot} left unfilled, the slot of each target
	// (Target.identity) listed at the last run.
	Slots map[string]map[string]int `json:"slots,omitempty"`
}

// taskState is one task key's record.
type taskState struct {
	Target   string             `json:"target"`   // the target's identity (Target.identity)
	Time     int64              `json:"time"`     // unix seconds when the counters were read
	Counters map[string]float64 `json:"counters"` // "<graph>.<metric>" of the diff metrics
}

// loadState reads the state at path. A missing file is an empty state; an
// unreadable or corrupt one is an empty state and an error to warn about.
func loadState(path string) (state, error) {
	empty := state{Version: stateVersion, Tasks: map[string]taskState{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return empty, nil
	}
	if err != nil {
		return empty, fmt.Errorf("state file ignored, rates start again: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return empty, fmt.Errorf("state file %s ignored, rates start again: %v", path, err)
	}
	if s.Version != stateVersion || s.Tasks == nil {
		return empty, nil
	}
	return s, nil
}

// saveState writes s to path atomically (a concurrent run reads the old or
// the new file, never half of one), creating the directory when missing.
func saveState(path string, s state) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot save state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("cannot save state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot save state %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot save state %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cannot save state: %w", err)
	}
	return nil
}

// report turns this run's results into metric lines, gauges as read and
// counters as per-minute rates against last, and returns the state for the
// next run. A rate is given only when its key had the same target at the
// last run (never across two tasks), between 1 and maxRateGap seconds ago,
// and the counter did not go down (the process restarted): never negative.
// A target that failed this run keeps its last counters, so its rates
// resume at its next answer.
func report(prefix string, results []result, last state, now time.Time) ([]metricLine, state) {
	next := state{Version: stateVersion, Tasks: map[string]taskState{}}
	var lines []metricLine
	ts := now.Unix()
	for _, r := range results {
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
		values := withGCRates(r.values, prev.Counters, rec.Counters, sameTarget, gap) // expvar targets (expvar.go)
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
			lines = append(lines, metricLine{key: prefix + "." + r.key + "." + m.key(), value: v, time: ts})
		}
		next.Tasks[r.key] = rec
	}
	return lines, next
}
