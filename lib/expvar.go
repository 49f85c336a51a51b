package mpecsgostats

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Go's own expvar (/debug/vars, --format expvar): the same metric keys as
// the handler's wherever a runtime.MemStats field means the same thing.
// expvar has no goroutine or cgo call count, so a target read this way has
// no runtime.* values; gc_per_second and gc_pause_per_second, which the
// handler computes between two of its samples, are computed here between
// two runs of the plugin from two hidden counters.

type expvarFormat struct{}

func (expvarFormat) name() string        { return "expvar" }
func (expvarFormat) title() string       { return "expvar's /debug/vars" }
func (expvarFormat) defaultPath() string { return "/debug/vars" }
func (expvarFormat) mediaRange() string  { return "application/json" }
func (expvarFormat) maxBodyBytes() int   { return maxJSONBodyBytes }

func (expvarFormat) parse(body []byte) (values, error) { return parseExpvar(body) }

// derive: the gc rates, from NumGC and PauseTotalNs of two answers.
func (expvarFormat) derive(cur, prev values, seconds float64) values {
	return gcRates(cur, prev, seconds)
}

// recognise: a JSON object with a "memstats" object at the top.
func (expvarFormat) recognise(contentType string, body []byte) bool {
	if firstNonSpace(body) != '{' {
		return false
	}
	found := false
	jsonKeys(body, func(key string, object bool) bool {
		found = key == "memstats" && object
		return found
	})
	return found
}

// errNoMemstats: JSON without a memstats object.
var errNoMemstats = errors.New("no memstats in response: not expvar's /debug/vars")

// memStats holds the runtime.MemStats fields of expvar's "memstats" object
// that are read, as sent; the others (the PauseNs and PauseEnd rings,
// BySize) are skipped undecoded.
type memStats struct {
	Alloc, Sys, StackInuse, Lookups, Mallocs, Frees         json.RawMessage
	HeapSys, HeapIdle, HeapInuse, HeapReleased, HeapObjects json.RawMessage
	TotalAlloc, NumGC, PauseTotalNs, NextGC                 json.RawMessage
}

// expvarVars is a /debug/vars answer as read: its memstats variable only.
type expvarVars struct {
	Memstats *memStats `json:"memstats"`
}

// expvarFields maps each metric to its runtime.MemStats
// field in expvar's "memstats" object.
var expvarFields = []struct {
	key   metric
	field string
	raw   func(*memStats) json.RawMessage
}{
	{memoryAlloc, "Alloc", func(m *memStats) json.RawMessage { return m.Alloc }},
	{memorySys, "Sys", func(m *memStats) json.RawMessage { return m.Sys }},
	{memoryStack, "StackInuse", func(m *memStats) json.RawMessage { return m.StackInuse }},
	{memoryLookups, "Lookups", func(m *memStats) json.RawMessage { return m.Lookups }},
	{memoryMallocs, "Mallocs", func(m *memStats) json.RawMessage { return m.Mallocs }},
	{memoryFrees, "Frees", func(m *memStats) json.RawMessage { return m.Frees }},
	{heapSys, "HeapSys", func(m *memStats) json.RawMessage { return m.HeapSys }},
	{heapIdle, "HeapIdle", func(m *memStats) json.RawMessage { return m.HeapIdle }},
	{heapInuse, "HeapInuse", func(m *memStats) json.RawMessage { return m.HeapInuse }},
	{heapReleased, "HeapReleased", func(m *memStats) json.RawMessage { return m.HeapReleased }},
	{gcNum, "NumGC", func(m *memStats) json.RawMessage { return m.NumGC }},
	{heapObjects, "HeapObjects", func(m *memStats) json.RawMessage { return m.HeapObjects }},
	{memoryTotalAlloc, "TotalAlloc", func(m *memStats) json.RawMessage { return m.TotalAlloc }},
	{hiddenNumGC, "NumGC", func(m *memStats) json.RawMessage { return m.NumGC }},
	{hiddenPauseTotal, "PauseTotalNs", func(m *memStats) json.RawMessage { return m.PauseTotalNs }},
	{hiddenGCGoal, "NextGC", func(m *memStats) json.RawMessage { return m.NextGC }},
}

// parseExpvar decodes one expvar response into "<graph>.<metric>" values
// and the hidden counters. Only the "memstats" variable is decoded, and of
// it only the fields read: the other variables, application variables
// among them, are only checked to be valid JSON (one pass of the decoder,
// without a copy of them; the variable's name is matched as encoding/json
// matches field names, so an application variable "MemStats" sent after
// Go's own would be taken for it: expvar sends them sorted, Go's last). A
// response that is not one JSON object, without a memstats object, or with
// a field read here that is not a number is an error; fields missing from
// memstats are left out.
func parseExpvar(body []byte) (values, error) {
	var vars expvarVars
	if err := json.Unmarshal(body, &vars); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field == "memstats" {
			return nil, fmt.Errorf("invalid expvar JSON: memstats is a JSON %s, not an object", typeErr.Value)
		}
		if errors.As(err, &typeErr) {
			return nil, fmt.Errorf("invalid expvar JSON: a JSON %s, not an object", typeErr.Value)
		}
		return nil, fmt.Errorf("invalid expvar JSON: %w", err)
	}
	if vars.Memstats == nil {
		return nil, errNoMemstats
	}
	v := make(values, len(expvarFields))
	for _, f := range expvarFields {
		raw := f.raw(vars.Memstats)
		if raw == nil || string(raw) == "null" {
			continue
		}
		n, ok := jsonNumber(raw)
		if !ok {
			return nil, fmt.Errorf("invalid expvar JSON: memstats.%s: %s is not a number", f.field, truncate(string(raw), 20))
		}
		v[f.key] = n
	}
	if len(v) == 0 {
		return nil, errors.New("no runtime.MemStats fields in memstats")
	}
	return v, nil
}

// jsonNumber is the value of raw, one valid JSON value, when it is a number
// a float64 holds.
func jsonNumber(raw json.RawMessage) (float64, bool) {
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	return v, err == nil
}
