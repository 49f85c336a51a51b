package mpecsgostats

import (
	"fmt"
	"slices"
	"strings"
)

// The metrics of a task: what every format maps its answer onto, and every
// output sends. A metric is an index into metricDefs; "<graph>.<name>" is
// only how the Mackerel output and the state file write it.

// graphDefs are the graphs of each task, in the order README lists them.
var graphDefs = []struct{ name, label, unit string }{
	{"runtime", "Runtime", "integer"},
	{"memory", "Memory", "bytes"},
	{"operation", "Operation", "integer"},
	{"heap", "Heap", "bytes"},
	{"gc", "GC", "float"},
	{"objects", "Heap Objects", "integer"},
	{"allocation", "Allocation", "bytes"},
}

// metric is one value a format may read from an answer.
type metric int

// The metrics, in the order they are printed. The first 15 are
// mackerel-plugin-gostats' metrics under the same names (heap_released is a
// gauge here); heapObjects and memoryTotalAlloc are additions.
const (
	goroutineNum metric = iota
	cgoCallNum
	memoryAlloc
	memorySys
	memoryStack
	memoryLookups
	memoryMallocs
	memoryFrees
	heapSys
	heapIdle
	heapInuse
	heapReleased
	gcNum
	gcPerSecond
	gcPausePerSecond
	heapObjects
	memoryTotalAlloc
	// Hidden metrics: read by a format, never printed to Mackerel. The
	// hidden counters are kept in the state like the other counters, for
	// what a format derives between two answers (gc rates).
	hiddenNumGC
	hiddenPauseTotal
	// Hidden values only labeled outputs send (OTLP): read by the formats
	// that have them, kept with the graph of their kind (so --graphs
	// drops them with it), never printed to Mackerel nor kept in the state.
	hiddenGCGoal     // the heap size the next GC aims at: the handler's gc_next, expvar's NextGC
	hiddenMaxProcs   // GOMAXPROCS: the handler's gomaxprocs
	hiddenHeapAllocs // /gc/heap/allocs:objects, without the tiny allocations Mallocs counts
	numMetrics
)

// metricDef is one metric. name is also its JSON field in the
// golang-stats-api-handler response. Diff metrics are counters reported as
// per-minute rates (rates.go); hidden ones are never printed.
type metricDef struct {
	graph, name, label string
	diff               bool
	hidden             bool
}

// metricDefs: every metric, indexed by it.
var metricDefs = [numMetrics]metricDef{
	goroutineNum:     {"runtime", "goroutine_num", "Goroutine Num", false, false},
	cgoCallNum:       {"runtime", "cgo_call_num", "CGO Call Num", true, false},
	memoryAlloc:      {"memory", "memory_alloc", "Alloc", false, false},
	memorySys:        {"memory", "memory_sys", "Sys", false, false},
	memoryStack:      {"memory", "memory_stack", "Stack In Use", false, false},
	memoryLookups:    {"operation", "memory_lookups", "Pointer Lookups", true, false},
	memoryMallocs:    {"operation", "memory_mallocs", "Mallocs", true, false},
	memoryFrees:      {"operation", "memory_frees", "Frees", true, false},
	heapSys:          {"heap", "heap_sys", "Sys", false, false},
	heapIdle:         {"heap", "heap_idle", "Idle", false, false},
	heapInuse:        {"heap", "heap_inuse", "In Use", false, false},
	heapReleased:     {"heap", "heap_released", "Released", false, false},
	gcNum:            {"gc", "gc_num", "GC Num", true, false},
	gcPerSecond:      {"gc", "gc_per_second", "GC Per Second", false, false},
	gcPausePerSecond: {"gc", "gc_pause_per_second", "GC Pause Per Second", false, false},
	heapObjects:      {"objects", "heap_objects", "Objects", false, false},
	memoryTotalAlloc: {"allocation", "memory_total_alloc", "Allocated Bytes / min", true, false},
	hiddenNumGC:      {"gc", "_num_gc", "", true, true},
	hiddenPauseTotal: {"gc", "_pause_total_ns", "", true, true},
	hiddenGCGoal:     {"gc", "_next_gc", "", false, true},
	hiddenMaxProcs:   {"runtime", "_gomaxprocs", "", false, true},
	hiddenHeapAllocs: {"operation", "_heap_allocs_objects", "", false, true},
}

// key is "<graph>.<name>": the metric's part of a Mackerel metric key, and
// its name in the state file.
func (m metric) key() string { return metricDefs[m].graph + "." + metricDefs[m].name }

// def is the metric's row of metricDefs.
func (m metric) def() metricDef { return metricDefs[m] }

// metrics are every metric, in metricDefs order.
func metrics() []metric {
	all := make([]metric, numMetrics)
	for i := range all {
		all[i] = metric(i)
	}
	return all
}

// metricNamed is the metric of a handler field name that is printed, or
// false: the fields of golang-stats-api-handler's answer.
func metricNamed(name string) (metric, bool) {
	for _, m := range metrics() {
		if d := m.def(); !d.hidden && d.name == name {
			return m, true
		}
	}
	return 0, false
}

// values are what a format read from one answer, or what a run reports.
type values map[metric]float64

// graphSet is a parsed --graphs: the graphs to send; nil is all.
type graphSet map[string]bool

// has tells whether the graph is sent.
func (g graphSet) has(graph string) bool { return g == nil || g[graph] }

// parseGraphs checks a --graphs list; empty means all.
func parseGraphs(list string) (graphSet, error) { return parseGraphsWith(list, false) }

// parseGraphsWith checks a --graphs list; empty means all. The container
// graphs are valid only with containers (--container-metrics), which then
// needs one of them in a list.
func parseGraphsWith(list string, containers bool) (graphSet, error) {
	if list == "" {
		return nil, nil
	}
	var valid, containerGraphs []string
	for _, g := range graphDefs {
		valid = append(valid, g.name)
	}
	for _, g := range containerGraphDefs {
		containerGraphs = append(containerGraphs, g.name)
	}
	if containers {
		valid = append(valid, containerGraphs...)
	}
	graphs := graphSet{}
	for _, g := range strings.Split(list, ",") {
		g = strings.TrimSpace(g)
		switch {
		case !containers && slices.Contains(containerGraphs, g):
			return nil, fmt.Errorf("--graphs %q: graph %q only with --container-metrics", list, g)
		case !slices.Contains(valid, g):
			return nil, fmt.Errorf("--graphs %q: unknown graph %q (valid: %s)", list, g, strings.Join(valid, ","))
		}
		graphs[g] = true
	}
	if containers && !slices.ContainsFunc(containerGraphs, func(g string) bool { return graphs[g] }) {
		return nil, fmt.Errorf("--container-metrics: --graphs %q names no container graph (%s)", list, strings.Join(containerGraphs, ","))
	}
	return graphs, nil
}

// keepGraphs drops from v the metrics of the graphs not in graphs.
func keepGraphs(v values, graphs graphSet) {
	for m := range v {
		if !graphs.has(m.def().graph) {
			delete(v, m)
		}
	}
}

// gcRates derives gc_per_second (collections per second) and
// gc_pause_per_second (milliseconds of pause per minute: what the handler's
// field reads when it is scraped once a minute) from the hidden counters of
// two answers seconds apart: for the formats that have the counters but not
// the rates. None when either answer lacks a counter or one went down (the
// process restarted).
func gcRates(cur, prev values, seconds float64) values {
	num, ok1 := cur[hiddenNumGC]
	pause, ok2 := cur[hiddenPauseTotal]
	lastNum, ok3 := prev[hiddenNumGC]
	lastPause, ok4 := prev[hiddenPauseTotal]
	if !ok1 || !ok2 || !ok3 || !ok4 || num < lastNum || pause < lastPause || seconds <= 0 {
		return nil
	}
	return values{
		gcPerSecond:      (num - lastNum) / seconds,
		gcPausePerSecond: (pause - lastPause) / 1e6 * 60 / seconds,
	}
}
