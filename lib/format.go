package mpecsgostats

import (
	"fmt"
	"strings"
)

// A format is what a target serves: golang-stats-api-handler's JSON, Go's
// expvar, client_golang's Prometheus text. Everything about a format is in
// its own file; a new format is that file and one line in the formats of
// Do (plugin.go).
type format interface {
	// name is the --format (and gostats.format label) value.
	name() string
	// title names what the format reads, in messages ("expvar's /debug/vars").
	title() string
	// defaultPath is where the format is served when --path is not given.
	defaultPath() string
	// mediaRange is what a scrape asks for in its Accept header ("" for
	// anything); --format auto's probe asks for every format's.
	mediaRange() string
	// maxBodyBytes bounds an answer; times --concurrency it is the most a
	// run holds in bodies.
	maxBodyBytes() int
	// recognise tells, for --format auto, whether an answer (its
	// Content-Type and body) is of this format. It reads as little as it
	// can: most answers of a probe are not.
	recognise(contentType string, body []byte) bool
	// parse reads an answer into values, counters as read: rates are
	// computed between runs (rates.go).
	parse(body []byte) (values, error)
	// derive computes the values that take two answers of the same target
	// (cur, and the counters of the one seconds before it), such as gc
	// rates; nil for none.
	derive(cur, prev values, seconds float64) values
}

// formatList is the formats a run knows, in the order --format auto probes
// their default paths.
type formatList []format

// named is the format of a --format value, or nil.
func (fs formatList) named(name string) format {
	for _, f := range fs {
		if f.name() == name {
			return f
		}
	}
	return nil
}

// names are the --format values, as messages list them.
func (fs formatList) names() []string {
	var names []string
	for _, f := range fs {
		names = append(names, f.name())
	}
	return names
}

// recognise is the first format that recognises an answer, or nil.
func (fs formatList) recognise(contentType string, body []byte) format {
	for _, f := range fs {
		if f.recognise(contentType, body) {
			return f
		}
	}
	return nil
}

// formatAuto is the --format that decides each target's format from its
// answer (probe.go).
const formatAuto = "auto"

// read parses an answer as f. When f cannot read it but another format
// recognises it, the error says which --format to use.
func (fs formatList) read(f format, contentType string, body []byte) (values, error) {
	v, err := f.parse(body)
	if err == nil {
		return v, nil
	}
	if other := fs.recognise(contentType, body); other != nil && other != f {
		return nil, fmt.Errorf("this is %s, not %s: use --format %s", other.title(), f.title(), other.name())
	}
	return nil, err
}

// acceptHeader asks for each media range in turn, the first preferred, and
// for anything else at a low weight (a server that negotiates strictly
// would otherwise answer 406).
func acceptHeader(ranges ...string) string {
	var parts []string
	q := 10
	for _, r := range ranges {
		if r == "" || strings.Contains(strings.Join(parts, ","), r) {
			continue
		}
		if q == 10 {
			parts = append(parts, r)
		} else {
			parts = append(parts, fmt.Sprintf("%s;q=0.%d", r, q))
		}
		q = max(q-1, 2)
	}
	return strings.Join(append(parts, "*/*;q=0.1"), ", ")
}
