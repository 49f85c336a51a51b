package mpecsgostats

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	mp "github.com/mackerelio/go-mackerel-plugin-helper"
)

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
// per-minute rates (see rates in state.go).
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

// isDiff tells whether the "<graph>.<metric>" key is a counter reported as a rate.
func isDiff(key string) bool {
	for _, m := range metricDefs {
		if m.key() == key {
			return m.diff
		}
	}
	return false
}

// graphDefinitions are the graphs of meta mode: one per graph with a
// wildcard at the task key, "<prefix>.#.<graph>", so a task under a new key
// needs no new definition.
func graphDefinitions(prefix string, only map[string]bool) map[string]mp.Graphs {
	labelPrefix := title(prefix)
	graphs := make(map[string]mp.Graphs, len(graphDefs))
	for _, g := range graphDefs {
		if only != nil && !only[g.name] {
			continue
		}
		var metrics []mp.Metrics
		for _, m := range metricDefs {
			if m.graph == g.name {
				metrics = append(metrics, mp.Metrics{Name: m.name, Label: m.label, Diff: m.diff})
			}
		}
		graphs[prefix+".#."+g.name] = mp.Graphs{Label: labelPrefix + " " + g.label, Unit: g.unit, Metrics: metrics}
	}
	return graphs
}

// title makes a graph label of a metric key prefix: "gostats" reads
// "Gostats", "gostats.prod" "Gostats Prod", "go_stats-2" "Go Stats 2".
func title(prefix string) string {
	words := strings.FieldsFunc(prefix, func(r rune) bool { return r == '.' || r == '_' || r == '-' })
	for i, w := range words {
		r, n := utf8.DecodeRuneInString(w)
		words[i] = string(unicode.ToUpper(r)) + w[n:]
	}
	return strings.Join(words, " ")
}

// printMeta writes what mackerel-agent reads in meta mode
// (MACKEREL_AGENT_PLUGIN_META=1): a header line and the graphs as JSON,
// with the health metrics' graphs when health is set.
func printMeta(w io.Writer, prefix string, graphs map[string]bool, health bool) error {
	defs := graphDefinitions(prefix, graphs)
	if health {
		maps.Copy(defs, healthGraphDefinitions(prefix))
	}
	b, err := json.Marshal(mp.GraphDef{Graphs: defs})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "# mackerel-agent-plugin\n%s\n", b)
	return err
}

// metricLine is one value as mackerel-agent reads it.
type metricLine struct {
	key   string
	value float64
	time  int64
}

// printValues writes "key\tvalue\tepoch" lines, values as %f like
// go-mackerel-plugin-helper and mackerel-plugin-gostats print them.
func printValues(w io.Writer, lines []metricLine) error {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s\t%f\t%d\n", l.key, l.value, l.time)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

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
