package mpecsgostats

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// counterResult is a scraped target under key with one gauge and one counter.
func counterResult(key, container string, mallocs float64) result {
	return result{
		target: Target{ContainerID: container, PrivatePort: 8080},
		key:    key,
		values: map[string]float64{"operation.memory_mallocs": mallocs, "memory.memory_sys": 1000},
	}
}

func failedResult(key, container string) result {
	return result{target: Target{ContainerID: container, PrivatePort: 8080}, key: key, cause: errors.New("down")}
}

// lastRun is a state saved at t0 by a run that read two targets.
func lastRun(t0 time.Time) state {
	return state{Version: stateVersion, Tasks: map[string]taskState{
		"32768": {Target: "aaa:8080", Time: t0.Unix(), Counters: map[string]float64{"operation.memory_mallocs": 1000}},
		"32769": {Target: "bbb:8080", Time: t0.Unix(), Counters: map[string]float64{"operation.memory_mallocs": 5000}},
	}}
}

func TestReport(t *testing.T) {
	t0 := time.Unix(1795613637, 0)
	rate := func(delta float64, gap time.Duration) string { // as mackerel-plugin-gostats computes it
		return fmt.Sprintf("%f", delta*60/gap.Seconds())
	}
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
				"gostats.32768.operation.memory_mallocs " + rate(3000, time.Minute), "gostats.32768.memory.memory_sys 1000.000000",
				"gostats.32769.operation.memory_mallocs " + rate(600, time.Minute), "gostats.32769.memory.memory_sys 1000.000000",
			}},
		{"61 seconds apart", lastRun(t0), 61 * time.Second,
			[]result{counterResult("32768", "aaa", 4000)},
			[]string{"gostats.32768.operation.memory_mallocs " + rate(3000, 61*time.Second), "gostats.32768.memory.memory_sys 1000.000000"}},
		{"task replaced under the same key, new counter above the old", lastRun(t0), time.Minute,
			[]result{counterResult("32768", "ccc", 90000), counterResult("32769", "bbb", 5600)},
			[]string{
				"gostats.32768.memory.memory_sys 1000.000000",
				"gostats.32769.operation.memory_mallocs " + rate(600, time.Minute), "gostats.32769.memory.memory_sys 1000.000000",
			}},
		{"process restarted in the same container", lastRun(t0), time.Minute,
			[]result{counterResult("32768", "aaa", 10)},
			[]string{"gostats.32768.memory.memory_sys 1000.000000"}},
		{"gap of 600 seconds", lastRun(t0), 600 * time.Second,
			[]result{counterResult("32768", "aaa", 4000)},
			[]string{"gostats.32768.operation.memory_mallocs " + rate(3000, 600*time.Second), "gostats.32768.memory.memory_sys 1000.000000"}},
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
			[]string{"gostats.32769.operation.memory_mallocs " + rate(600, time.Minute), "gostats.32769.memory.memory_sys 1000.000000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0.Add(tt.gap)
			lines, _ := report("gostats", tt.results, tt.last, now)
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

// TestReportNextState: what the next run starts from.
func TestReportNextState(t *testing.T) {
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
			_, next := report("gostats", tt.results, lastRun(t0), now)
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
	_, s := report("gostats", []result{counterResult("32768", "ccc", 90000)}, lastRun(t0), t0.Add(time.Minute))
	lines, _ := report("gostats", []result{counterResult("32768", "ccc", 93000)}, s, t0.Add(2*time.Minute))
	if len(lines) != 2 || lines[1].key != "gostats.32768.operation.memory_mallocs" || lines[1].value != 3000 {
		t.Errorf("lines %+v, want a rate of 3000 and the gauge", lines)
	}
}

func TestLoadState(t *testing.T) {
	dir := t.TempDir()
	saved := lastRun(time.Unix(1795613637, 0))
	good, _ := json.Marshal(saved)
	empty := state{Version: stateVersion, Tasks: map[string]taskState{}}
	tests := []struct {
		name    string
		content []byte // nil: no file
		want    state
		wantErr string // %s is the path
	}{
		{"missing", nil, empty, ""},
		{"saved by a run", good, saved, ""},
		{"empty", []byte{}, empty, "state file %s ignored, rates start again: unexpected end of JSON input"},
		{"truncated", good[:40], empty, "state file %s ignored, rates start again: unexpected end of JSON input"},
		{"not JSON", []byte("\x00\xff garbage"), empty, "state file %s ignored, rates start again: invalid character '\\x00' looking for beginning of value"},
		{"go-mackerel-plugin-helper's state, as version 0.1.0 kept it", []byte(`{"gostats.32768.operation.memory_mallocs":10,"_lastTime":1795613577,"_containers":{"32768":"aaa"}}` + "\n"), empty, ""},
		{"a future layout", []byte(`{"version":2,"tasks":{}}`), empty, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if tt.content != nil {
				if err := os.WriteFile(path, tt.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := loadState(path)
			wantErr := ""
			if tt.wantErr != "" {
				wantErr = fmt.Sprintf(tt.wantErr, path)
			}
			if gotErr := fmt.Sprint(err); (err == nil) != (wantErr == "") || (err != nil && gotErr != wantErr) {
				t.Errorf("err %v\nwant %q", err, wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("state %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestSaveState(t *testing.T) {
	dir := t.TempDir()
	s := lastRun(time.Unix(1795613637, 0))

	t.Run("creates a missing work directory", func(t *testing.T) {
		path := filepath.Join(dir, "workdir", "not", "yet", "state")
		if err := saveState(path, s); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Dir(path))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("work directory: %v, %v; want mode 0755", fi, err)
		}
		got, err := loadState(path)
		if err != nil || !reflect.DeepEqual(got, s) {
			t.Errorf("read back %+v, %v\nwant %+v", got, err, s)
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Errorf("directory holds %d files, want only the state", len(entries))
		}
	})
	t.Run("parent is a file", func(t *testing.T) {
		notDir := filepath.Join(dir, "file")
		if err := os.WriteFile(notDir, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		err := saveState(filepath.Join(notDir, "state"), s)
		want := "cannot save state: mkdir " + notDir + ": not a directory"
		if err == nil || err.Error() != want {
			t.Errorf("err %v\nwant %s", err, want)
		}
	})
}
