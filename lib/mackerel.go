package mpecsgostats

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The Mackerel output (--output mackerel): mackerel-agent's plugin lines on
// stdout, "<prefix>.<key>.<graph>.<metric>\tvalue\tepoch"; in meta mode the
// graph definitions. The run's health lines and the meta mode header are
// mackerel-agent's protocol too: they are here, printed whatever --output.

type mackerelOutput struct {
	w          io.Writer
	prefix     string
	only       graphSet // --graphs
	containers bool     // --container-metrics
}

func openMackerelOutput(opts options, _ string, stdout io.Writer) (output, error) {
	return mackerelOutput{w: stdout, prefix: opts.Prefix, only: opts.graphs, containers: opts.ContainerMetrics}, nil
}

func (mackerelOutput) labels() bool                        { return false }
func (mackerelOutput) needsKey() bool                      { return true }
func (mackerelOutput) reserve(time.Duration) time.Duration { return 0 }
func (mackerelOutput) errorsGraph() (name, label string)   { return "", "" }
func (o mackerelOutput) graphs() map[string]graph {
	g := graphDefinitions(o.prefix, o.only)
	if o.containers {
		maps.Copy(g, containerGraphDefinitions(o.prefix, o.only))
	}
	return g
}

// write prints every keyed target's values (gauges as read, counters as
// rates) in metricDefs order.
func (o mackerelOutput) write(_ context.Context, r *report) (outcome, error) {
	var lines []metricLine
	ts := r.time.Unix()
	for _, res := range r.results {
		if res.key == "" {
			continue
		}
		for _, m := range metrics() {
			if v, ok := res.reported[m]; ok && !m.def().hidden {
				lines = append(lines, metricLine{key: o.prefix + "." + res.key + "." + m.key(), value: v, time: ts})
			}
		}
	}
	if o.containers {
		lines = append(lines, containerLines(o.prefix, r.containers, o.only, ts)...)
	}
	return outcome{}, printValues(o.w, lines)
}

// writeMeta writes what mackerel-agent reads in meta mode
// (MACKEREL_AGENT_PLUGIN_META=1): a header line and the graphs as JSON: the
// outputs' graphs, and the health metrics' graphs unless noHealth.
func writeMeta(w io.Writer, outs outputs, hw healthWriter, health bool) error {
	defs := map[string]graph{}
	for _, o := range outs {
		maps.Copy(defs, o.graphs())
	}
	if health {
		maps.Copy(defs, hw.graphs())
	}
	b, err := json.Marshal(graphDef{Graphs: defs})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "# mackerel-agent-plugin\n%s\n", b)
	return err
}

// graphDef is what meta mode prints after its header: the JSON of
// go-mackerel-plugin-helper's GraphDef, whose types are not linked in (they
// bring text casing tables with them, 0.2 MB of every run's binary).
type graphDef struct {
	Graphs map[string]graph `json:"graphs"`
}

// graph is one graph definition.
type graph struct {
	Label   string        `json:"label"`
	Unit    string        `json:"unit"`
	Metrics []graphMetric `json:"metrics"`
}

// graphMetric is one metric of a graph. Diff is the plugin's own (counters
// are printed as rates): not sent, as go-mackerel-plugin-helper does not.
type graphMetric struct {
	Name    string `json:"name"`
	Label   string `json:"label"`
	Diff    bool   `json:"-"`
	Stacked bool   `json:"stacked"`
}

// graphDefinitions are the graphs of meta mode: one per graph with a
// wildcard at the task key, "<prefix>.#.<graph>", so a task under a new key
// needs no new definition.
func graphDefinitions(prefix string, only graphSet) map[string]graph {
	labelPrefix := title(prefix)
	graphs := make(map[string]graph, len(graphDefs))
	for _, g := range graphDefs {
		if !only.has(g.name) {
			continue
		}
		var ms []graphMetric
		for _, m := range metrics() {
			if d := m.def(); d.graph == g.name && !d.hidden {
				ms = append(ms, graphMetric{Name: d.name, Label: d.label, Diff: d.diff})
			}
		}
		graphs[prefix+".#."+g.name] = graph{Label: labelPrefix + " " + g.label, Unit: g.unit, Metrics: ms}
	}
	return graphs
}

// healthWriter prints the health lines of a run.
type healthWriter struct {
	w          io.Writer
	prefix     string
	outputs    outputs // those with an errorsGraph add a line
	containers bool    // --container-metrics adds the containers' errors line
}

// healthKeyPrefix is the first part of the health metric keys.
func healthKeyPrefix(prefix string) string { return prefix + "_scrape" }

func (hw healthWriter) write(now time.Time, h health) error {
	lines := healthLines(hw.prefix, h, hw.outputs, now)
	if hw.containers {
		lines = append(lines, metricLine{key: healthKeyPrefix(hw.prefix) + ".containers.errors", value: float64(h.containerErrors), time: now.Unix()})
	}
	return printValues(hw.w, lines)
}

// healthLines are the health figures as metric lines, in healthMetricDefs
// order, then each output's errors.
func healthLines(prefix string, h health, outs outputs, now time.Time) []metricLine {
	hp, ts := healthKeyPrefix(prefix), now.Unix()
	lines := make([]metricLine, 0, len(healthMetricDefs)+len(outs))
	for _, m := range healthMetricDefs {
		lines = append(lines, metricLine{key: hp + "." + m.graph + "." + m.name, value: m.value(h), time: ts})
	}
	for _, o := range outs {
		if name, _ := o.errorsGraph(); name != "" {
			lines = append(lines, metricLine{key: hp + "." + name + ".errors", value: float64(h.errorsOf(name)), time: ts})
		}
	}
	return lines
}

// graphs are the meta mode graphs of the health metrics,
// "<prefix>_scrape.<graph>", labelled after the prefix as the task graphs
// are ("Gostats Scrape Targets"), and one per output that counts errors.
func (hw healthWriter) graphs() map[string]graph {
	graphs := make(map[string]graph, len(healthGraphDefs)+len(hw.outputs))
	hp := healthKeyPrefix(hw.prefix)
	for _, g := range healthGraphDefs {
		var ms []graphMetric
		for _, m := range healthMetricDefs {
			if m.graph == g.name {
				ms = append(ms, graphMetric{Name: m.name, Label: m.label})
			}
		}
		graphs[hp+"."+g.name] = graph{Label: title(hw.prefix) + " " + g.label, Unit: g.unit, Metrics: ms}
	}
	for _, o := range hw.outputs {
		if name, label := o.errorsGraph(); name != "" {
			graphs[hp+"."+name] = graph{Label: title(hw.prefix) + " Scrape " + label, Unit: "integer",
				Metrics: []graphMetric{{Name: "errors", Label: "Errors"}}}
		}
	}
	if hw.containers {
		graphs[hp+".containers"] = graph{Label: title(hw.prefix) + " Scrape Containers", Unit: "integer",
			Metrics: []graphMetric{{Name: "errors", Label: "Stats Errors"}}}
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
	b := make([]byte, 0, 64*len(lines))
	for _, l := range lines {
		b = append(b, l.key...)
		b = append(b, '\t')
		b = strconv.AppendFloat(b, l.value, 'f', 6, 64) // what %f prints
		b = append(b, '\t')
		b = strconv.AppendInt(b, l.time, 10)
		b = append(b, '\n')
	}
	_, err := w.Write(b)
	return err
}
