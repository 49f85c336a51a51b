package mpecsgostats

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	mp "github.com/mackerelio/go-mackerel-plugin-helper"
)

// The Mackerel output: mackerel-agent's plugin lines on stdout,
// "<prefix>.<key>.<graph>.<metric>\tvalue\tepoch", then the run's health
// lines; and in meta mode the graph definitions.

type mackerelOutput struct {
	w      io.Writer
	prefix string
	graphs map[string]bool // --graphs; nil: all
	values bool            // print the tasks' values (mackerel in --output)
	health bool            // print the health lines (not --no-health)
	otlp   bool            // otlp in --output: its health graph in meta mode
}

// write prints every scraped target's values (gauges as read, counters as
// rates) in metricDefs order, then the health lines.
func (o mackerelOutput) write(r *report) error {
	var lines []metricLine
	ts := r.time.Unix()
	for _, res := range r.results {
		if !o.values || res.key == "" {
			continue
		}
		for _, m := range metricDefs {
			if v, ok := res.reported[m.key()]; ok {
				lines = append(lines, metricLine{key: o.prefix + "." + res.key + "." + m.key(), value: v, time: ts})
			}
		}
	}
	if o.health {
		lines = append(lines, healthLines(o.prefix, r.health, r.time)...)
	}
	return printValues(o.w, lines)
}

// meta writes what mackerel-agent reads in meta mode
// (MACKEREL_AGENT_PLUGIN_META=1): a header line and the graphs as JSON:
// the tasks' graphs when their values are printed (mackerel in --output),
// the health metrics' graphs when health is set.
func (o mackerelOutput) meta() error {
	defs := map[string]mp.Graphs{}
	if o.values {
		defs = graphDefinitions(o.prefix, o.graphs)
	}
	if o.health {
		maps.Copy(defs, healthGraphDefinitions(o.prefix, o.otlp))
	}
	b, err := json.Marshal(mp.GraphDef{Graphs: defs})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.w, "# mackerel-agent-plugin\n%s\n", b)
	return err
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

// healthKeyPrefix is the first part of the health metric keys.
func healthKeyPrefix(prefix string) string { return prefix + "_scrape" }

// healthLines are the health figures as metric lines, in healthMetricDefs
// order.
func healthLines(prefix string, h health, now time.Time) []metricLine {
	values := h.values()
	hp, ts := healthKeyPrefix(prefix), now.Unix()
	lines := make([]metricLine, 0, len(healthMetricDefs))
	for _, m := range healthMetricDefs {
		if m.graph == "otlp" && !h.otlp {
			continue
		}
		k := m.graph + "." + m.name
		lines = append(lines, metricLine{key: hp + "." + k, value: values[k], time: ts})
	}
	return lines
}

// healthGraphDefinitions are the meta mode graphs of the health metrics,
// "<prefix>_scrape.<graph>", labelled after the prefix as the task graphs
// are ("Gostats Scrape Targets"); the otlp graph with otlp only.
func healthGraphDefinitions(prefix string, otlp bool) map[string]mp.Graphs {
	graphs := make(map[string]mp.Graphs, len(healthGraphDefs))
	for _, g := range healthGraphDefs {
		if g.name == "otlp" && !otlp {
			continue
		}
		var metrics []mp.Metrics
		for _, m := range healthMetricDefs {
			if m.graph == g.name {
				metrics = append(metrics, mp.Metrics{Name: m.name, Label: m.label})
			}
		}
		graphs[healthKeyPrefix(prefix)+"."+g.name] = mp.Graphs{Label: title(prefix) + " " + g.label, Unit: g.unit, Metrics: metrics}
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
