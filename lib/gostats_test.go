package mpecsgostats

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	stats_api "github.com/fukata/golang-stats-api-handler"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// statsJSONValues is testdata/stats.json, captured from the real handler.
var statsJSONValues = map[string]float64{
	"runtime.goroutine_num":         3,
	"runtime.cgo_call_num":          0,
	"memory.memory_alloc":           219624,
	"memory.memory_sys":             8083720,
	"memory.memory_stack":           294912,
	"operation.memory_lookups":      0,
	"operation.memory_mallocs":      796,
	"operation.memory_frees":        46,
	"heap.heap_sys":                 3899392,
	"heap.heap_idle":                3129344,
	"heap.heap_inuse":               770048,
	"heap.heap_released":            3096576,
	"gc.gc_num":                     0,
	"gc.gc_per_second":              0,
	"gc.gc_pause_per_second":        0,
	"objects.heap_objects":          750,
	"allocation.memory_total_alloc": 219624,
}

func TestParseStats(t *testing.T) {
	compact := readTestdata(t, "stats.json")
	tests := []struct {
		name    string
		body    []byte
		want    map[string]float64
		wantErr string
	}{
		{"real handler output", compact, statsJSONValues, ""},
		{"newline-terminated", append(append([]byte{}, compact...), '\n'), statsJSONValues, ""},
		{"pretty-printed", readTestdata(t, "stats_pretty.json"), map[string]float64{
			"runtime.goroutine_num": 3, "runtime.cgo_call_num": 0,
			"memory.memory_alloc": 193040, "memory.memory_sys": 12015880, "memory.memory_stack": 294912,
			"operation.memory_lookups": 0, "operation.memory_mallocs": 504, "operation.memory_frees": 17,
			"heap.heap_sys": 8093696, "heap.heap_idle": 7528448, "heap.heap_inuse": 565248, "heap.heap_released": 7495680,
			"gc.gc_num": 0, "gc.gc_per_second": 0, "gc.gc_pause_per_second": 0,
			"objects.heap_objects": 487, "allocation.memory_total_alloc": 193040,
		}, ""},
		{"after garbage collections", readTestdata(t, "stats_gc.json"), map[string]float64{
			"runtime.goroutine_num": 7, "runtime.cgo_call_num": 1,
			"memory.memory_alloc": 203048, "memory.memory_sys": 8755464, "memory.memory_stack": 360448,
			"operation.memory_lookups": 0, "operation.memory_mallocs": 1132, "operation.memory_frees": 305,
			"heap.heap_sys": 3833856, "heap.heap_idle": 3022848, "heap.heap_inuse": 811008, "heap.heap_released": 1769472,
			"gc.gc_num": 5, "gc.gc_per_second": 0, "gc.gc_pause_per_second": 0,
			"objects.heap_objects": 827, "allocation.memory_total_alloc": 5546504,
		}, ""},
		{"missing fields are left out", []byte(`{"goroutine_num": 12, "memory_sys": 1048576, "gc_pause": []}`),
			map[string]float64{"runtime.goroutine_num": 12, "memory.memory_sys": 1048576}, ""},
		{"null is missing", []byte(`{"goroutine_num": null, "gc_num": 4}`), map[string]float64{"gc.gc_num": 4}, ""},
		{"wrong type", []byte(`{"goroutine_num": 3, "memory_sys": "8083720"}`), nil,
			`invalid stats JSON: field memory_sys: "8083720" is not a number`},
		{"truncated", compact[:100], nil, "invalid stats JSON: unexpected end of JSON input"},
		{"not JSON", []byte("<html><body>It works!</body></html>\n"), nil,
			"invalid stats JSON: invalid character '<' looking for beginning of value"},
		{"JSON array", []byte(`[1,2]`), nil,
			"invalid stats JSON: json: cannot unmarshal array into Go value of type map[string]json.RawMessage"},
		{"another service's JSON", []byte(`{"status":"ok","uptime":12}`), nil, "no golang-stats-api-handler fields in response"},
		{"empty body", []byte{}, nil, "invalid stats JSON: unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assertParse(t, readAs(gostatsFormat{}), tt.body, tt.want, tt.wantErr) })
	}
}

// assertParse checks what parse makes of body: want, or the error wantErr.
func assertParse(t *testing.T, parse func([]byte) (map[string]float64, error), body []byte, want map[string]float64, wantErr string) {
	t.Helper()
	got, err := parse(body)
	if wantErr != "" {
		if err == nil || err.Error() != wantErr {
			t.Fatalf("err = %v, want %s", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// TestFetchStatsRealHandler scrapes the real golang-stats-api-handler.
func TestFetchStatsRealHandler(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(stats_api.Handler))
	defer srv.Close()
	r := scrapeURL(t, gostatsFormat{}, srv.URL+"/stats", time.Second)
	if r.cause != nil {
		t.Fatal(r.cause)
	}
	got := byKey(r.values)
	shown := 0 // the handler has every metric but the hidden counters
	for _, m := range metrics() {
		if !m.def().hidden {
			shown++
		}
	}
	if len(got) != shown {
		t.Errorf("got %d values, want one per metric (%d): %v", len(got), shown, got)
	}
	if got["memory.memory_sys"] <= 0 || got["runtime.goroutine_num"] < 1 {
		t.Errorf("implausible values: %v", got)
	}
}
