package mpecsgostats

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	stats_api "github.com/fukata/golang-stats-api-handler"
)

// refusingPort is a loopback port where connections are refused: a socket
// bound to it but not listening. Unlike a closed listener's port,
// it stays reserved while the test runs, so no other listener (of this or a
// concurrent test process) can take it and answer.
func refusingPort(t testing.TB) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

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
		t.Run(tt.name, func(t *testing.T) { assertParse(t, parseStats, tt.body, tt.want, tt.wantErr) })
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
	got, err := fetchStats(context.Background(), newHTTPClient(time.Second), srv.URL+"/stats")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(metricDefs) {
		t.Errorf("got %d values, want one per metric (%d): %v", len(got), len(metricDefs), got)
	}
	if got["memory.memory_sys"] <= 0 || got["runtime.goroutine_num"] < 1 {
		t.Errorf("implausible values: %v", got)
	}
}

func TestFetchStatsFailures(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/error", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/stats", http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat(" ", 64<<10))
		for i := 0; i < 64*16 && r.Context().Err() == nil; i++ { // 64 MiB
			w.Write(chunk)
		}
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html></html>"))
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	mux.HandleFunc("/stats", stats_api.Handler)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	refused := fmt.Sprintf("http://127.0.0.1:%d/stats", refusingPort(t))

	tests := []struct {
		url     string
		wantErr string
	}{
		{srv.URL + "/error", "unexpected status 500 Internal Server Error"},
		{srv.URL + "/redirect", "unexpected status 302 Found (redirect to /stats not followed)"},
		{srv.URL + "/big", "response body exceeds 262144 bytes"},
		{srv.URL + "/html", "invalid stats JSON: invalid character '<' looking for beginning of value"},
		{srv.URL + "/hang", "context deadline exceeded"},
		{refused, "connect: connection refused"},
	}
	hc := newHTTPClient(time.Second)
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := fetchStats(ctx, hc, tt.url)
			if err == nil || !strings.HasSuffix(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want ...%s", err, tt.wantErr)
			}
		})
	}
}

func TestScrapeAllBoundedByDeadline(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	good := httptest.NewServer(http.HandlerFunc(stats_api.Handler))
	defer good.Close()
	target := func(srv *httptest.Server, name string) keyed {
		addr := srv.Listener.Addr().(*net.TCPAddr)
		return keyed{Target: Target{ContainerID: name + "0123456789abcdef", ContainerName: name,
			Host: addr.IP.String(), Port: uint16(addr.Port), HostPort: uint16(addr.Port)}, key: name}
	}
	opts := options{Scheme: "http", Path: "/stats", Timeout: 300 * time.Millisecond}
	run := func(concurrency int, targets ...keyed) []result {
		opts.Concurrency = concurrency
		ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
		defer cancel()
		return scrapeAll(ctx, newHTTPClient(opts.Timeout), targets, opts)
	}
	hung, ok := target(hang, "hung"), target(good, "good")
	noAnswer := "no answer within 300ms"
	notScraped := "not scraped: 2 others still in flight at the deadline (see --concurrency)"

	// Enough slots: hung targets cost only themselves.
	results := run(8, hung, hung, ok, hung)
	for i, r := range results {
		if i == 2 {
			if r.cause != nil || r.values["memory.memory_sys"] <= 0 {
				t.Errorf("good target: cause = %v, values %v", r.cause, r.values)
			}
		} else if r.cause == nil || r.cause.Error() != noAnswer {
			t.Errorf("hung target: cause = %v\nwant %s", r.cause, noAnswer)
		}
	}

	// 2 slots, 5 hung targets: 2 time out, 3 never start, none waits past the deadline.
	count := map[string]int{}
	for _, r := range run(2, hung, hung, hung, hung, hung) {
		count[r.cause.Error()]++
	}
	if want := map[string]int{noAnswer: 2, notScraped: 3}; !reflect.DeepEqual(count, want) {
		t.Errorf("errors: %v\nwant %v", count, want)
	}
}
