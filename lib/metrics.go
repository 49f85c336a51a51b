package mpecsgostats

import (
	"fmt"
	"slices"
	"strings"
)

// The metrics of a task: what every format maps its answer onto, and every
// output sends.

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

// metricDef is one reported metric; name is also its JSON field in the
// golang-stats-api-handler response. Diff metrics are counters reported as
// per-minute rates (rates.go).
type metricDef struct {
	graph, name, label string
	diff               bool
}

func (m metricDef) key() string { return m.graph + "." + m.name }

// metricDefs: the first 15 are mackerel-plugin-gostats' metrics under the
// same names (heap_released is a gauge here); the last two are additions.
var metricDefs = []metricDef{
	{"runtime", "goroutine_num", "Goroutine Num", false},
	{"runtime", "cgo_call_num", "CGO Call Num", true},
	{"memory", "memory_alloc", "Alloc", false},
	{"memory", "memory_sys", "Sys", false},
	{"memory", "memory_stack", "Stack In Use", false},
	{"operation", "memory_lookups", "Pointer Lookups", true},
	{"operation", "memory_mallocs", "Mallocs", true},
	{"operation", "memory_frees", "Frees", true},
	{"heap", "heap_sys", "Sys", false},
	{"heap", "heap_idle", "Idle", false},
	{"heap", "heap_inuse", "In Use", false},
	{"heap", "heap_released", "Released", false},
	{"gc", "gc_num", "GC Num", true},
	{"gc", "gc_per_second", "GC Per Second", false},
	{"gc", "gc_pause_per_second", "GC Pause Per Second", false},
	{"objects", "heap_objects", "Objects", false},
	{"allocation", "memory_total_alloc", "Allocated Bytes / min", true},
}

// Hidden counters: values a format may return that are never printed (no
// metricDef has their key); rates keeps them in the state like the other
// counters, and withGCRates derives the two computed gc values from them.
// They are in the gc graph, so --graphs keeps or drops them with it.
const (
	hiddenNumGC      = "gc._num_gc"
	hiddenPauseTotal = "gc._pause_total_ns"
)

// parseGraphs checks a --graphs list; empty means all.
func parseGraphs(list string) (map[string]bool, error) {
	if list == "" {
		return nil, nil
	}
	var valid []string
	for _, g := range graphDefs {
		valid = append(valid, g.name)
	}
	graphs := map[string]bool{}
	for _, g := range strings.Split(list, ",") {
		g = strings.TrimSpace(g)
		if !slices.Contains(valid, g) {
			return nil, fmt.Errorf("--graphs %q: unknown graph %q (valid: %s)", list, g, strings.Join(valid, ","))
		}
		graphs[g] = true
	}
	return graphs, nil
}

// keepGraphs drops from values ("<graph>.<metric>") the graphs not in
// graphs (--graphs); nil keeps all.
func keepGraphs(values map[string]float64, graphs map[string]bool) {
	if graphs == nil {
		return
	}
	for k := range values {
		if graph, _, _ := strings.Cut(k, "."); !graphs[graph] {
			delete(values, k)
		}
	}
}
