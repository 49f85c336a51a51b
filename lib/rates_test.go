package mpecsgostats

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// counterResult is a scraped target under key with one gauge and one counter.
func counterResult(key, container string, mallocs float64) result {
	return result{
		target: target{ContainerID: container, PrivatePort: 8080},
		key:    key,
		how:    how{format: gostatsFormat{}},
		values: ofKeys(map[string]float64{"operation.memory_mallocs": mallocs, "memory.memory_sys": 1000}),
	}
}

func failedResult(key, container string) result {
	return result{target: target{ContainerID: container, PrivatePort: 8080}, key: key, cause: errors.New("down")}
}

// lastRun is a state saved at t0 by a run that read two targets.
func lastRun(t0 time.Time) state {
	return state{Version: stateVersion, Tasks: map[string]taskState{
		"32768": {Target: "aaa:8080", Time: t0.Unix(), Counters: map[string]float64{"operation.memory_mallocs": 1000}},
		"32769": {Target: "bbb:8080", Time: t0.Unix(), Counters: map[string]float64{"operation.memory_mallocs": 5000}},
	}}
}

func TestRates(t *testing.T) {
	t0 := time.Unix(1795613637, 0)
	tests := []struct {
		name    string
		last    state
		gap     time.Duration // from the last run to this one
		results []result
		want    []string // key value
	}{
		{"counters a minute apart", lastRun(t0), time.Minute,
			[]result{counterResult("32768", "aaa", 4000), counterResult("32769", "bbb", 5600)},
			[]string{
				"gostats.32768.operation.memory_mallocs 3000.000000", "gostats.32768.memory.memory_sys 1000.000000",
				"gostats.32769.operation.memory_mallocs 600.000000", "gostats.32769.memory.memory_sys 1000.000000",
			}},
		{"61 seconds apart", lastRun(t0), 61 * time.Second,
			[]result{counterResult("32768", "aaa", 4000)},
			[]string{"gostats.32768.operation.memory_mallocs 2950.819672", "gostats.32768.memory.memory_sys 1000.000000"}},
		{"task replaced under the same key, new counter above the old", lastRun(t0), time.Minute,
			[]result{counterResult("32768", "ccc", 90000), counterResult("32769", "bbb", 5600)},
			[]string{
				"gostats.32768.memory.memory_sys 1000.000000",
				"gostats.32769.operation.memory_mallocs 600.000000", "gostats.32769.memory.memory_sys 1000.000000",
			}},
		{"process restarted in the same container", lastRun(t0), time.Minute,
			[]result{counterResult("32768", "aaa", 10)},
			[]string{"gostats.32768.memory.memory_sys 1000.000000"}},
		{"gap of 600 seconds", lastRun(t0), 600 * time.Second,
			[]result{counterResult("32768", "aaa", 4000)},
			[]string{"gostats.32768.operation.memory_mallocs 300.000000", "gostats.32768.memory.memory_sys 1000.000000"}},
		{"gap longer than 10 minutes", lastRun(t0), 601 * time.Second,
			[]result{counterResult("32768", "aaa", 4000)},
			[]string{"gostats.32768.memory.memory_sys 1000.000000"}},
		{"another run saved the state this second", lastRun(t0), 0,
			[]result{counterResult("32768", "aaa", 4000)},
			[]string{"gostats.32768.memory.memory_sys 1000.000000"}},
		{"no state yet", state{}, time.Minute,
			[]result{counterResult("32768", "aaa", 4000)},
			[]string{"gostats.32768.memory.memory_sys 1000.000000"}},
		{"a failed target prints nothing", lastRun(t0), time.Minute,
			[]result{failedResult("32768", "aaa"), counterResult("32769", "bbb", 5600)},
			[]string{"gostats.32769.operation.memory_mallocs 600.000000", "gostats.32769.memory.memory_sys 1000.000000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0.Add(tt.gap)
			lines, _ := rateRun(t, tt.results, tt.last, now)
			var got []string
			for _, l := range lines {
				got = append(got, fmt.Sprintf("%s %f", l.key, l.value))
				if l.time != now.Unix() {
					t.Errorf("%s at %d, want %d", l.key, l.time, now.Unix())
				}
			}
			slices.Sort(got)
			slices.Sort(tt.want)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestRatesNextState: what the next run starts from.
func TestRatesNextState(t *testing.T) {
	t0 := time.Unix(1795613637, 0)
	now := t0.Add(time.Minute)
	tests := []struct {
		name    string
		results []result
		want    map[string]taskState
	}{
		{"this run's counters", []result{counterResult("32768", "aaa", 4000)}, map[string]taskState{
			"32768": {Target: "aaa:8080", Time: now.Unix(), Counters: map[string]float64{"operation.memory_mallocs": 4000}},
		}},
		{"a failed target keeps its last counters, so its rates resume", []result{failedResult("32768", "aaa")}, map[string]taskState{
			"32768": lastRun(t0).Tasks["32768"],
		}},
		{"a failed new target under a known key starts empty", []result{failedResult("32768", "ccc")}, map[string]taskState{}},
		{"the replacement owns the key", []result{counterResult("32769", "ddd", 7)}, map[string]taskState{
			"32769": {Target: "ddd:8080", Time: now.Unix(), Counters: map[string]float64{"operation.memory_mallocs": 7}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, next := rateRun(t, tt.results, lastRun(t0), now)
			if next.Version != stateVersion || !reflect.DeepEqual(next.Tasks, tt.want) {
				t.Errorf("next state %+v\nwant tasks %+v", next, tt.want)
			}
		})
	}
}

// TestRatesResumeAfterReplacement: the run after a task was replaced under
// its key has rates again, for the new task.
func TestRatesResumeAfterReplacement(t *testing.T) {
	t0 := time.Unix(1795613637, 0)
	_, s := rateRun(t, []result{counterResult("32768", "ccc", 90000)}, lastRun(t0), t0.Add(time.Minute))
	lines, _ := rateRun(t, []result{counterResult("32768", "ccc", 93000)}, s, t0.Add(2*time.Minute))
	if len(lines) != 2 || lines[1].key != "gostats.32768.operation.memory_mallocs" || lines[1].value != 3000 {
		t.Errorf("lines %+v, want a rate of 3000 and the gauge", lines)
	}
}

// expvarResult is a scraped expvar target under key: its format derives
// the gc rates from the hidden counters.
func expvarResult(key, container string, numGC, pauseNs float64) result {
	return result{
		target: target{ContainerID: container, PrivatePort: 8080},
		key:    key,
		how:    how{format: expvarFormat{}},
		values: ofKeys(map[string]float64{
			"memory.memory_sys": 1000, "gc.gc_num": numGC,
			"gc._num_gc": numGC, "gc._pause_total_ns": pauseNs,
		}),
	}
}

// lastExpvarRun is a state saved at t0 by a run that read an expvar target
// after 10 collections, 2 ms of pause in all.
func lastExpvarRun(t0 time.Time) state {
	return state{Version: stateVersion, Tasks: map[string]taskState{
		"32768": {Target: "aaa:8080", Time: t0.Unix(), Counters: map[string]float64{
			"gc.gc_num": 10, "gc._num_gc": 10, "gc._pause_total_ns": 2_000_000,
		}},
	}}
}

// TestRatesGC: the two gc values computed for expvar targets, with
// the values computed by hand from the counters and the seconds between
// the runs: gc_per_second = collections / seconds, gc_pause_per_second =
// pause ms * 60 / seconds.
func TestRatesGC(t *testing.T) {
	t0 := time.Unix(1795613637, 0)
	sys := "gostats.32768.memory.memory_sys 1000.000000"
	tests := []struct {
		name    string
		last    state
		gap     time.Duration
		results []result
		want    []string
	}{
		{"a minute: 3 collections, 1.5 ms of pause", lastExpvarRun(t0), time.Minute,
			[]result{expvarResult("32768", "aaa", 13, 3_500_000)},
			[]string{sys, "gostats.32768.gc.gc_num 3.000000",
				"gostats.32768.gc.gc_per_second 0.050000", "gostats.32768.gc.gc_pause_per_second 1.500000"}},
		{"30 seconds: the same counts, twice the rates", lastExpvarRun(t0), 30 * time.Second,
			[]result{expvarResult("32768", "aaa", 13, 3_500_000)},
			[]string{sys, "gostats.32768.gc.gc_num 6.000000",
				"gostats.32768.gc.gc_per_second 0.100000", "gostats.32768.gc.gc_pause_per_second 3.000000"}},
		{"45 seconds: 2 collections, 0.25 ms", lastExpvarRun(t0), 45 * time.Second,
			[]result{expvarResult("32768", "aaa", 12, 2_250_000)},
			[]string{sys, "gostats.32768.gc.gc_num 2.666667",
				"gostats.32768.gc.gc_per_second 0.044444", "gostats.32768.gc.gc_pause_per_second 0.333333"}},
		{"no collection", lastExpvarRun(t0), time.Minute,
			[]result{expvarResult("32768", "aaa", 10, 2_000_000)},
			[]string{sys, "gostats.32768.gc.gc_num 0.000000",
				"gostats.32768.gc.gc_per_second 0.000000", "gostats.32768.gc.gc_pause_per_second 0.000000"}},
		{"gap of 600 seconds", lastExpvarRun(t0), 600 * time.Second,
			[]result{expvarResult("32768", "aaa", 40, 14_000_000)},
			[]string{sys, "gostats.32768.gc.gc_num 3.000000",
				"gostats.32768.gc.gc_per_second 0.050000", "gostats.32768.gc.gc_pause_per_second 1.200000"}},
		{"gap of 601 seconds", lastExpvarRun(t0), 601 * time.Second,
			[]result{expvarResult("32768", "aaa", 40, 14_000_000)}, []string{sys}},
		{"gap under a second", lastExpvarRun(t0), 0,
			[]result{expvarResult("32768", "aaa", 13, 3_500_000)}, []string{sys}},
		{"no state yet", state{}, time.Minute,
			[]result{expvarResult("32768", "aaa", 13, 3_500_000)}, []string{sys}},
		{"task replaced under the same key", lastExpvarRun(t0), time.Minute,
			[]result{expvarResult("32768", "ccc", 13, 3_500_000)}, []string{sys}},
		{"process restarted: both counters went down", lastExpvarRun(t0), time.Minute,
			[]result{expvarResult("32768", "aaa", 1, 30_000)}, []string{sys}},
		{"process restarted: only the pause total shows it", lastExpvarRun(t0), time.Minute,
			[]result{expvarResult("32768", "aaa", 12, 1_000_000)}, []string{sys, "gostats.32768.gc.gc_num 2.000000"}},
		{"last run read the key without hidden counters", state{Version: stateVersion, Tasks: map[string]taskState{
			"32768": {Target: "aaa:8080", Time: t0.Unix(), Counters: map[string]float64{"gc.gc_num": 10}},
		}}, time.Minute,
			[]result{expvarResult("32768", "aaa", 13, 3_500_000)}, []string{sys, "gostats.32768.gc.gc_num 3.000000"}},
		{"the handler's own values are printed as sent", lastExpvarRun(t0), time.Minute,
			[]result{{target: target{ContainerID: "aaa", PrivatePort: 8080}, key: "32768", how: how{format: gostatsFormat{}},
				values: ofKeys(map[string]float64{"gc.gc_per_second": 0.25, "gc.gc_pause_per_second": 7.5})}},
			[]string{"gostats.32768.gc.gc_per_second 0.250000", "gostats.32768.gc.gc_pause_per_second 7.500000"}},
		{"a failed target prints nothing", lastExpvarRun(t0), time.Minute,
			[]result{failedResult("32768", "aaa")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, _ := rateRun(t, tt.results, tt.last, t0.Add(tt.gap))
			var got []string
			for _, l := range lines {
				got = append(got, fmt.Sprintf("%s %f", l.key, l.value))
			}
			slices.Sort(got)
			slices.Sort(tt.want)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestRatesGCState: the hidden counters are kept in the state like
// the other counters, and a failed target keeps them for its next answer.
func TestRatesGCState(t *testing.T) {
	t0 := time.Unix(1795613637, 0)
	now := t0.Add(time.Minute)
	_, next := rateRun(t, []result{expvarResult("32768", "ccc", 13, 3_500_000)}, lastExpvarRun(t0), now)
	want := map[string]taskState{"32768": {Target: "ccc:8080", Time: now.Unix(), Counters: map[string]float64{
		"gc.gc_num": 13, "gc._num_gc": 13, "gc._pause_total_ns": 3_500_000,
	}}}
	if !reflect.DeepEqual(next.Tasks, want) {
		t.Errorf("next state %+v\nwant %+v", next.Tasks, want)
	}
	_, next = rateRun(t, []result{failedResult("32768", "aaa")}, lastExpvarRun(t0), now)
	if !reflect.DeepEqual(next.Tasks, lastExpvarRun(t0).Tasks) {
		t.Errorf("after a failed scrape: %+v\nwant the last run's", next.Tasks)
	}
	// Two runs in a row from no state: the second has the rates.
	_, s := rateRun(t, []result{expvarResult("32768", "ccc", 13, 3_500_000)}, state{}, now)
	lines, _ := rateRun(t, []result{expvarResult("32768", "ccc", 19, 6_500_000)}, s, now.Add(2*time.Minute))
	got := map[string]float64{}
	for _, l := range lines {
		got[l.key] = l.value
	}
	if got["gostats.32768.gc.gc_per_second"] != 0.05 || got["gostats.32768.gc.gc_pause_per_second"] != 1.5 {
		t.Errorf("second run: %v", got)
	}
}

// rateRun computes the rates of results as a run does and prints them with
// the Mackerel output (no health lines): the lines printed and the next
// state.
func rateRun(t *testing.T, results []result, last state, now time.Time) ([]metricLine, state) {
	t.Helper()
	reported, next := rates(results, last, now)
	if len(reported) != len(results) {
		t.Fatalf("%d reported values for %d results", len(reported), len(results))
	}
	for i := range results {
		results[i].reported = reported[i]
	}
	var b bytes.Buffer
	if _, err := (mackerelOutput{w: &b, prefix: "gostats"}).write(t.Context(), &report{time: now, results: results}); err != nil {
		t.Fatal(err)
	}
	return parseLines(t, b.String()), next
}
