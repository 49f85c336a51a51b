package mpecsgostats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// golang-stats-api-handler's JSON (--format gostats, the default): each
// metric is the JSON field of its name in metricDefs. The handler computes
// its gc rates itself, so nothing is derived between two answers.

type gostatsFormat struct{}

func (gostatsFormat) name() string        { return "gostats" }
func (gostatsFormat) title() string       { return "golang-stats-api-handler" }
func (gostatsFormat) defaultPath() string { return "/stats" }
func (gostatsFormat) mediaRange() string  { return "application/json" }

// maxBodyBytes: the real handler sends about 1 KiB, 5 KiB pretty-printed
// with a full gc_pause list.
func (gostatsFormat) maxBodyBytes() int { return maxJSONBodyBytes }

func (gostatsFormat) parse(body []byte) (values, error) { return parseStats(body) }

func (gostatsFormat) derive(cur, prev values, seconds float64) values { return nil }

// recognise: a JSON object with a field of the handler's at the top, and no
// "memstats" object (which would make it expvar's /debug/vars, where an
// application variable may share a handler field's name). It stops at the
// first handler field when "memstats" is nowhere in the body.
func (gostatsFormat) recognise(contentType string, body []byte) bool {
	if firstNonSpace(body) != '{' {
		return false
	}
	handler, memstats := false, false
	jsonKeys(body, func(key string, object bool) bool {
		if key == "memstats" && object {
			memstats = true
			return true
		}
		if _, ok := metricNamed(key); ok && !handler {
			handler = true
			return !bytes.Contains(body, []byte(`"memstats"`))
		}
		return false
	})
	return handler && !memstats
}

// maxJSONBodyBytes bounds a JSON stats answer: the handler's is about 1 KiB;
// expvar's /debug/vars 4 to 10 KiB, plus the application's own variables.
const maxJSONBodyBytes = 256 << 10

// gostatsHidden are the handler's fields read into hidden metrics: values
// only labeled outputs send.
var gostatsHidden = []struct {
	key   metric
	field string
}{
	{hiddenGCGoal, "gc_next"},
	{hiddenMaxProcs, "gomaxprocs"},
}

// errNoStats is returned for JSON that has none of the handler's fields.
var errNoStats = errors.New("no golang-stats-api-handler fields in response")

// parseStats decodes one golang-stats-api-handler response into values;
// each metric is the JSON field of its name. Fields missing (or null) in
// the response are left out; a response with none of them, with a field
// that is not a number, or that is not one JSON object is an error.
func parseStats(body []byte) (values, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fmt.Errorf("invalid stats JSON: %w", err)
	}
	v := make(values, numMetrics)
	for _, m := range metrics() {
		d := m.def()
		raw, ok := fields[d.name]
		if d.hidden || !ok || string(raw) == "null" {
			continue
		}
		f, ok := jsonNumber(raw)
		if !ok {
			return nil, fmt.Errorf("invalid stats JSON: field %s: %s is not a number", d.name, truncate(string(raw), 20))
		}
		v[m] = f
	}
	if len(v) == 0 {
		return nil, errNoStats
	}
	for _, h := range gostatsHidden {
		if f, ok := jsonNumber(fields[h.field]); ok {
			v[h.key] = f
		}
	}
	return v, nil
}
