package main

// Integration tests of --format expvar: tasks serving only Go's own expvar
// at /debug/vars on the real Docker Engine, and under mackerel-agent once.

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// What a task read with --format expvar gives: the handler's keys wherever
// runtime.MemStats has the field, no runtime.*; gc_per_second and
// gc_pause_per_second are computed between two runs, like the rates.
var (
	expvarGauges = []string{
		"memory.memory_alloc", "memory.memory_sys", "memory.memory_stack",
		"heap.heap_sys", "heap.heap_idle", "heap.heap_inuse", "heap.heap_released",
		"objects.heap_objects",
	}
	expvarRates = []string{
		"operation.memory_lookups", "operation.memory_mallocs", "operation.memory_frees",
		"gc.gc_num", "gc.gc_per_second", "gc.gc_pause_per_second",
		"allocation.memory_total_alloc",
	}
)

// startExpvarTasks starts two tasks serving only expvar in a cluster of the
// test's own (removed when t ends, in no shared task's filter): one bare
// (STATSAPP_MODE=expvar), one with application variables and a /gc endpoint
// (expvar-app). The only place here that starts tasks through the harness.
func startExpvarTasks(t *testing.T) (cluster string, bare, app task) {
	t.Helper()
	cluster = ownCluster(t, "expvar")
	var tasks []task
	for _, mode := range []string{"expvar", "expvar-app"} {
		tk, err := startTask(cluster, "itest"+runID+"-expvar", mode, "8080")
		if err != nil {
			t.Fatal(err)
		}
		if err := waitAnswers(tk); err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, tk)
	}
	return cluster, tasks[0], tasks[1]
}

func expvarGet(t *testing.T, url string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
}

// TestExpvarTasks: two runs with --format expvar over expvar-only tasks,
// the warning a run without it gives, and mackerel-agent once.
func TestExpvarTasks(t *testing.T) {
	needDocker(t)
	own, bare, app := startExpvarTasks(t)
	ports := portsOf([]task{bare, app})
	args := []string{"--docker-host", dockerHost, "--label", "com.amazonaws.ecs.cluster=" + own,
		"--format", "expvar", "--timeout", scrapeTimeout.String(), "--tempfile", filepath.Join(t.TempDir(), "state")}
	run := func(t *testing.T, args ...string) map[string]float64 {
		t.Helper()
		r := runPlugin(t, nil, args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		m := parseMetrics(t, r.stdout)
		for k, v := range m {
			if v < 0 {
				t.Errorf("%s = %f, negative", k, v)
			}
		}
		return m
	}

	if !t.Run("first run: gauges", func(t *testing.T) {
		m := run(t, args...)
		assertKeys(t, m, keysFor(ports, expvarGauges))
		assertPositive(t, m, ports)
	}) {
		return
	}
	if !t.Run("second run: rates and the computed gc values", func(t *testing.T) {
		for range 3 {
			expvarGet(t, "http://127.0.0.1:"+app.port+"/gc")
		}
		time.Sleep(1100 * time.Millisecond) // rates need runs a second apart
		m := run(t, args...)
		assertKeys(t, m, keysFor(ports, expvarGauges, expvarRates))
		// 3 collections or more on app since the last run; gc_num is their
		// number per minute, gc_per_second the same per second.
		perMin, perSec := m["gostats."+app.port+".gc.gc_num"], m["gostats."+app.port+".gc.gc_per_second"]
		if perSec <= 0 || math.Abs(perSec*60-perMin) > 1e-4 {
			t.Errorf("gc_num %f a minute, gc_per_second %f: want > 0 and the same rate", perMin, perSec)
		}
		pause := m["gostats."+app.port+".gc.gc_pause_per_second"]
		if pause <= 0 {
			t.Errorf("gc_pause_per_second = %f, want > 0 after 3 collections", pause)
		}
		t.Logf("after 3 collections: gc_num %f/min, gc_per_second %f, gc_pause_per_second %f ms/min", perMin, perSec, pause)
	}) {
		return
	}
	t.Run("third run, --graphs gc: the computed values still come", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond)
		m := run(t, append(slices.Clone(args), "--graphs", "gc")...)
		assertKeys(t, m, keysFor(ports, []string{"gc.gc_num", "gc.gc_per_second", "gc.gc_pause_per_second"}))
	})
	t.Run("read without --format expvar", func(t *testing.T) {
		r := runPlugin(t, nil, "--docker-host", dockerHost, "--label", "com.amazonaws.ecs.cluster="+own,
			"--path", "/debug/vars", "--tempfile", filepath.Join(t.TempDir(), "state"))
		var want []string
		for _, tk := range []task{bare, app} {
			want = append(want, fmt.Sprintf("warning: scrape http://127.0.0.1:%s/debug/vars (container %s %s): "+
				"this is expvar's /debug/vars, not golang-stats-api-handler: use --format expvar", tk.port, tk.name, tk.shortID()))
		}
		got := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		slices.Sort(got)
		slices.Sort(want)
		if m := withoutHealth(parseMetrics(t, r.stdout)); r.code != 0 || len(m) != 0 || !slices.Equal(got, want) {
			t.Errorf("exit %d, metrics %v, stderr\n%s\nwant exit 0, none, and\n%s", r.code, m, r.stderr, strings.Join(want, "\n"))
		}
	})
	t.Run("mackerel-agent once", func(t *testing.T) {
		custom := agentOnce(t, "examples/mackerel-agent.conf", "--format", "expvar", "--label", "com.amazonaws.ecs.cluster="+own)
		var want []string
		for _, k := range keysFor(ports, expvarGauges) {
			want = append(want, "custom."+k)
		}
		assertKeys(t, custom, want)
		for _, p := range ports {
			if k := "custom.gostats." + p + ".memory.memory_sys"; custom[k] <= 0 {
				t.Errorf("%s = %f, want > 0", k, custom[k])
			}
		}
	})
}
