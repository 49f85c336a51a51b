package mpecsgostats

import (
	"encoding/json"
	"errors"
	"fmt"
)

// golang-stats-api-handler's JSON (--format gostats, the default): each
// metric is the JSON field of its name in metricDefs.

type gostatsFormat struct{}

func (gostatsFormat) name() string        { return formatGostats }
func (gostatsFormat) defaultPath() string { return "/stats" }
func (gostatsFormat) accept() string      { return "application/json" }

// maxBodyBytes: the real handler sends about 1 KiB, 5 KiB pretty-printed
// with a full gc_pause list.
func (gostatsFormat) maxBodyBytes() int { return maxJSONBodyBytes }

func (gostatsFormat) parse(body []byte) (map[string]float64, error) { return parseStats(body) }

// maxJSONBodyBytes bounds a JSON stats answer: the handler's is about 1 KiB;
// expvar's /debug/vars 4 to 10 KiB, plus the application's own variables.
const maxJSONBodyBytes = 256 << 10

// errNoStats is returned for JSON that has none of the handler's fields.
var errNoStats = errors.New("no golang-stats-api-handler fields in response")

// parseStats decodes one golang-stats-api-handler response into
// "<graph>.<metric>" values; each metric is the JSON field of its name.
// Fields missing (or null) in the response are left out; a response with
// none of them, with a field that is not a number, or that is not one JSON
// object is an error.
func parseStats(body []byte) (map[string]float64, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fmt.Errorf("invalid stats JSON: %w", err)
	}
	values := make(map[string]float64, len(metricDefs))
	for _, m := range metricDefs {
		raw, ok := fields[m.name]
		if !ok || string(raw) == "null" {
			continue
		}
		var v float64
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("invalid stats JSON: field %s: %s is not a number", m.name, truncate(string(raw), 20))
		}
		values[m.key()] = v
	}
	if len(values) == 0 {
		if _, ok := fields["memstats"]; ok {
			return nil, errExpvarNotGostats
		}
		return nil, errNoStats
	}
	return values, nil
}
