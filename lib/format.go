package mpecsgostats

import "errors"

// A format is what a target serves: golang-stats-api-handler's JSON, Go's
// expvar. A new format is one file with a type that implements format, and
// one line in formats.
type format interface {
	// name is the --format value.
	name() string
	// defaultPath is where the format is served when --path is not given.
	defaultPath() string
	// accept is the Accept header of a scrape ("" for none).
	accept() string
	// maxBodyBytes bounds an answer; times --concurrency it is the most a
	// run holds in bodies.
	maxBodyBytes() int
	// parse reads an answer into "<graph>.<metric>" values (metricDefs),
	// counters as read: rates are computed between runs (rates.go). Values a
	// run derives from two answers are asked for with hidden counters: a
	// format that returns gc._num_gc and gc._pause_total_ns gets
	// gc.gc_per_second and gc.gc_pause_per_second computed.
	parse(body []byte) (map[string]float64, error)
}

// formats are the --format values, the default first, in the order
// --format auto probes their default paths.
var formats = []format{
	gostatsFormat{},
	prometheusFormat{},
	expvarFormat{},
}

// The names of the formats.
const (
	formatGostats    = "gostats"
	formatExpvar     = "expvar"
	formatPrometheus = "prometheus"
)

// formatAuto is the --format that decides each target's format from its
// answer (probe.go).
const formatAuto = "auto"

// formatNamed is the format of a --format value, or nil.
func formatNamed(name string) format {
	for _, f := range formats {
		if f.name() == name {
			return f
		}
	}
	return nil
}

var (
	// errExpvarNotGostats: a /debug/vars answer read with --format gostats.
	errExpvarNotGostats = errors.New("this is expvar's /debug/vars, not golang-stats-api-handler: use --format expvar")
	// errGostatsNotExpvar: a golang-stats-api-handler answer read with --format expvar.
	errGostatsNotExpvar = errors.New("this is golang-stats-api-handler, not expvar's /debug/vars: use --format gostats")
	// errNoMemstats: JSON with neither.
	errNoMemstats = errors.New("no memstats in response: not expvar's /debug/vars")
)

// formatNames are the names of the formats, as --format lists them.
func formatNames() []string {
	var names []string
	for _, f := range formats {
		names = append(names, f.name())
	}
	return names
}
