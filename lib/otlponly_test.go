package mpecsgostats

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// TestParseOTLPOnlyValues: the hidden values only labeled outputs send
// (go.memory.gc.goal, go.processor.limit, go.memory.allocations), read by
// each format from the captures, the values read from the files by hand.
func TestParseOTLPOnlyValues(t *testing.T) {
	tests := []struct {
		name string
		f    format
		body []byte
		want map[string]float64
	}{
		{"handler", gostatsFormat{}, readTestdata(t, "stats.json"), map[string]float64{"gc._next_gc": 4194304, "runtime._gomaxprocs": 2}},
		{"handler after gcs", gostatsFormat{}, readTestdata(t, "stats_gc.json"), map[string]float64{"gc._next_gc": 4194304, "runtime._gomaxprocs": 2}},
		{"handler: gc_next not a number is none", gostatsFormat{}, []byte(`{"goroutine_num": 3, "gc_next": "x", "gomaxprocs": 4}`),
			map[string]float64{"runtime._gomaxprocs": 4}},
		{"expvar", expvarFormat{}, readTestdata(t, "expvar.json"), map[string]float64{"gc._next_gc": 4194304}},
		{"client_golang", prometheusFormat{}, readTestdata(t, "prometheus.txt"), map[string]float64{"gc._next_gc": 4194304, "runtime._gomaxprocs": 2}},
	}
	if _, err := os.Stat(publishedDir); err == nil {
		for _, p := range []struct {
			file string
			want map[string]float64
		}{
			{"kube-apiserver-1.34.0.txt", map[string]float64{"gc._next_gc": 1.94106018e+08, "runtime._gomaxprocs": 10, "operation._heap_allocs_objects": 5.601587e+06}},
			{"prometheus-3.1.0-demo.txt", map[string]float64{"gc._next_gc": 1.0365948e+08, "runtime._gomaxprocs": 1, "operation._heap_allocs_objects": 4.4046288803e+10}},
			{"prometheus-1.x-2017.txt", map[string]float64{"gc._next_gc": 2.033527e+07}},
		} {
			b, err := os.ReadFile(filepath.Join(publishedDir, p.file))
			if err != nil {
				t.Fatal(err)
			}
			tests = append(tests, struct {
				name string
				f    format
				body []byte
				want map[string]float64
			}{p.file, prometheusFormat{}, b, p.want})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.f.parse(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for k, x := range byKeyAll(v) {
				if k == "gc._next_gc" || k == "runtime._gomaxprocs" || k == "operation._heap_allocs_objects" {
					got[k] = x
				}
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
