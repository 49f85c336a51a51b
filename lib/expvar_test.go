package mpecsgostats

import (
	"bytes"
	"expvar"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// expvarJSONValues is testdata/expvar.json, captured from testdata/statsapp
// with STATSAPP_MODE=expvar: a fresh process, no collection yet.
var expvarJSONValues = map[string]float64{
	"memory.memory_alloc":           209896,
	"memory.memory_sys":             12278024,
	"memory.memory_stack":           294912,
	"operation.memory_lookups":      0,
	"operation.memory_mallocs":      589,
	"operation.memory_frees":        18,
	"heap.heap_sys":                 8093696,
	"heap.heap_idle":                7430144,
	"heap.heap_inuse":               663552,
	"heap.heap_released":            7397376,
	"gc.gc_num":                     0,
	"objects.heap_objects":          571,
	"allocation.memory_total_alloc": 209896,
	"gc._num_gc":                    0,
	"gc._pause_total_ns":            0,
}

// expvarAppJSONValues is testdata/expvar_app.json, captured with
// STATSAPP_MODE=expvar-app after 5 requests and 3 collections: application
// variables ("build", a published func, and "requests") besides Go's own.
var expvarAppJSONValues = map[string]float64{
	"memory.memory_alloc":           161112,
	"memory.memory_sys":             8476936,
	"memory.memory_stack":           327680,
	"operation.memory_lookups":      0,
	"operation.memory_mallocs":      982,
	"operation.memory_frees":        366,
	"heap.heap_sys":                 3866624,
	"heap.heap_idle":                3153920,
	"heap.heap_inuse":               712704,
	"heap.heap_released":            2998272,
	"gc.gc_num":                     3,
	"objects.heap_objects":          616,
	"allocation.memory_total_alloc": 262288,
	"gc._num_gc":                    3,
	"gc._pause_total_ns":            157793,
}

func TestParseExpvar(t *testing.T) {
	compact := readTestdata(t, "expvar.json")
	app := readTestdata(t, "expvar_app.json")
	// memstats of the compact capture, to build variants from.
	memstats := string(compact[bytes.Index(compact, []byte(`{"Alloc"`)) : bytes.LastIndex(compact, []byte("}\n}"))+1])
	tests := []struct {
		name    string
		body    []byte
		want    map[string]float64
		wantErr string
	}{
		{"real expvar output", compact, expvarJSONValues, ""},
		{"application variables are ignored", app, expvarAppJSONValues, ""},
		{"application variables are not even decoded", []byte(`{"huge": 1e400, "memory_sys": "app's own", "memstats": ` + memstats + `}`), expvarJSONValues, ""},
		{"fields missing from memstats are left out", []byte(`{"memstats": {"Sys": 1048576, "NumGC": 2, "PauseNs": [1, 2]}}`),
			map[string]float64{"memory.memory_sys": 1048576, "gc.gc_num": 2, "gc._num_gc": 2}, ""},
		{"wrong type", []byte(`{"memstats": {"Alloc": 1, "Sys": "12278024"}}`), nil,
			`invalid expvar JSON: memstats.Sys: "12278024" is not a number`},
		{"negative is a number", []byte(`{"memstats": {"Sys": -1}}`), map[string]float64{"memory.memory_sys": -1}, ""},
		{"out of range", []byte(`{"memstats": {"Sys": 1e400}}`), nil, "invalid expvar JSON: memstats.Sys: 1e400 is not a number"},
		{"memstats not an object", []byte(`{"memstats": [1, 2, 3]}`), nil, "invalid expvar JSON: memstats is a JSON array, not an object"},
		{"memstats a string", []byte(`{"cmdline": [], "memstats": "Sys"}`), nil, "invalid expvar JSON: memstats is a JSON string, not an object"},
		{"an application's MemStats before Go's, as expvar sorts them", []byte(`{"MemStats": {"Sys": 5}, "memstats": {"Sys": 7}}`),
			map[string]float64{"memory.memory_sys": 7}, ""},
		{"memstats of no known field", []byte(`{"memstats": {"BySize": []}}`), nil, "no runtime.MemStats fields in memstats"},
		{"memstats null", []byte(`{"cmdline": ["/app"], "memstats": null}`), nil, "no memstats in response: not expvar's /debug/vars"},
		{"the handler's output", readTestdata(t, "stats.json"), nil,
			"this is golang-stats-api-handler, not expvar's /debug/vars: use --format gostats"},
		{"another service's JSON", []byte(`{"status":"ok","uptime":12}`), nil, "no memstats in response: not expvar's /debug/vars"},
		{"truncated", compact[:100], nil, "invalid expvar JSON: unexpected end of JSON input"},
		{"not JSON", []byte("<html><body>It works!</body></html>\n"), nil,
			"invalid expvar JSON: invalid character '<' looking for beginning of value"},
		{"JSON array", []byte(`[1,2]`), nil, "invalid expvar JSON: a JSON array, not an object"},
		{"JSON number", []byte("42\n"), nil, "invalid expvar JSON: a JSON number, not an object"},
		{"two objects", append(append([]byte{}, compact...), compact...), nil,
			"invalid expvar JSON: invalid character '{' after top-level value"},
		{"empty body", []byte{}, nil, "invalid expvar JSON: unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assertParse(t, readAs(expvarFormat{}), tt.body, tt.want, tt.wantErr) })
	}
}

// TestParseStatsOfExpvar: /debug/vars read as the handler's output names
// the option to use.
func TestParseStatsOfExpvar(t *testing.T) {
	for _, name := range []string{"expvar.json", "expvar_app.json"} {
		_, err := readAs(gostatsFormat{})(readTestdata(t, name))
		if want := "this is expvar's /debug/vars, not golang-stats-api-handler: use --format expvar"; err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %s", name, err, want)
		}
	}
}

// TestExpvarKeysAreTheHandlers: an expvar target, read twice, prints the
// handler's keys; only runtime.* (goroutines, cgo calls) is missing.
func TestExpvarKeysAreTheHandlers(t *testing.T) {
	values, err := parseExpvar(readTestdata(t, "expvar_app.json"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1795613637, 0)
	target := target{ContainerID: "aaa", PrivatePort: 8080}
	read := how{format: expvarFormat{}}
	_, last := rateRun(t, []result{{target: target, key: "k", how: read, values: values}}, state{}, t0)
	lines, _ := rateRun(t, []result{{target: target, key: "k", how: read, values: values}}, last, t0.Add(time.Minute))
	printed := map[string]bool{}
	for _, l := range lines {
		printed[strings.TrimPrefix(l.key, "gostats.k.")] = true
	}
	var missing []string
	shown := 0
	for _, m := range metrics() {
		if m.def().hidden {
			continue
		}
		shown++
		if !printed[m.key()] {
			missing = append(missing, m.key())
		}
	}
	if want := []string{"runtime.goroutine_num", "runtime.cgo_call_num"}; !slices.Equal(missing, want) || len(printed) != shown-2 {
		t.Errorf("printed %v; not printed %q, want only %q", printed, missing, want)
	}
}

// TestScrapeFormats: the warning line of each way a target fails, as a run
// prints it, with each --format, against loopback services listed by a
// Docker stand-in.
func TestScrapeFormats(t *testing.T) {
	expvarOnly := http.NewServeMux() // a service that imports expvar and nothing else
	expvarOnly.Handle("/debug/vars", expvar.Handler())
	handlerOnly := http.NewServeMux()
	handlerOnly.HandleFunc("/stats", realHandler)
	odd := http.NewServeMux()
	odd.HandleFunc("/debug/vars", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("as") {
		case "string":
			w.Write([]byte(`{"cmdline":["/app"],"memstats":{"Alloc":1,"Sys":"12"}}`))
		case "html":
			w.Write([]byte("<html><body>It works!</body></html>\n"))
		case "other":
			w.Write([]byte(`{"status":"ok"}`))
		case "big": // an application variable of 300 KiB
			w.Write([]byte(`{"cache":"` + strings.Repeat("x", 300<<10) + `","memstats":{"Sys":1}}`))
		}
	})
	serve := func(h http.Handler) uint16 {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return uint16(srv.Listener.Addr().(*net.TCPAddr).Port)
	}
	expvarT, handlerT, oddT := serve(expvarOnly), serve(handlerOnly), serve(odd)

	tests := []struct {
		name   string
		target uint16
		args   []string
		want   string // the warning; "" for none
	}{
		{"expvar read as expvar", expvarT, []string{"--format", "expvar"}, ""},
		{"handler read as gostats", handlerT, nil, ""},
		{"expvar-only service, default format", expvarT, nil,
			"warning: scrape http://127.0.0.1:%d/stats (container ecs-web-3-web-0000 000000000001): unexpected status 404 Not Found"},
		{"expvar read with --format gostats", expvarT, []string{"--path", "/debug/vars"},
			"warning: scrape http://127.0.0.1:%d/debug/vars (container ecs-web-3-web-0000 000000000001): this is expvar's /debug/vars, not golang-stats-api-handler: use --format expvar"},
		{"handler read with --format expvar", handlerT, []string{"--format", "expvar", "--path", "/stats"},
			"warning: scrape http://127.0.0.1:%d/stats (container ecs-web-3-web-0000 000000000001): this is golang-stats-api-handler, not expvar's /debug/vars: use --format gostats"},
		{"service without expvar", handlerT, []string{"--format", "expvar"},
			"warning: scrape http://127.0.0.1:%d/debug/vars (container ecs-web-3-web-0000 000000000001): unexpected status 404 Not Found"},
		{"memstats field not a number", oddT, []string{"--format", "expvar", "--path", "/debug/vars?as=string"},
			"warning: scrape http://127.0.0.1:%d/debug/vars?as=string (container ecs-web-3-web-0000 000000000001): invalid expvar JSON: memstats.Sys: \"12\" is not a number"},
		{"not JSON", oddT, []string{"--format", "expvar", "--path", "/debug/vars?as=html"},
			"warning: scrape http://127.0.0.1:%d/debug/vars?as=html (container ecs-web-3-web-0000 000000000001): invalid expvar JSON: invalid character '<' looking for beginning of value"},
		{"another service's JSON", oddT, []string{"--format", "expvar", "--path", "/debug/vars?as=other"},
			"warning: scrape http://127.0.0.1:%d/debug/vars?as=other (container ecs-web-3-web-0000 000000000001): no memstats in response: not expvar's /debug/vars"},
		{"application variables over the body bound", oddT, []string{"--format", "expvar", "--path", "/debug/vars?as=big"},
			"warning: scrape http://127.0.0.1:%d/debug/vars?as=big (container ecs-web-3-web-0000 000000000001): response body exceeds 262144 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := runIn(t, fleetDocker(t, tt.target), tt.args...)
			var want []string
			if tt.want != "" {
				want = []string{fmt.Sprintf(tt.want, tt.target)}
			}
			if run.code != 0 || !slices.Equal(run.stderr, want) {
				t.Errorf("exit %d, stderr %q\nwant %q", run.code, run.stderr, want)
			}
			if tt.want == "" && len(run.keys) < 8 {
				t.Errorf("keys %q", run.keys)
			}
		})
	}
}

// TestFetchExpvarReal scrapes the real expvar handler of this process: all
// 13 handler keys expvar has and the 2 hidden counters, plausible values.
func TestFetchExpvarReal(t *testing.T) {
	srv := httptest.NewServer(expvar.Handler())
	defer srv.Close()
	r := scrapeURL(t, expvarFormat{}, srv.URL+"/debug/vars", time.Second)
	if r.cause != nil {
		t.Fatal(r.cause)
	}
	got := byKey(r.values)
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	var want []string
	for k := range expvarJSONValues {
		want = append(want, k)
	}
	slices.Sort(keys)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("keys %q\nwant %q", keys, want)
	}
	if got["memory.memory_sys"] <= 0 || got["allocation.memory_total_alloc"] < got["memory.memory_alloc"] {
		t.Errorf("implausible values: %v", got)
	}
}

// FuzzParseExpvar: any body gives values or an error, never a panic, and
// only handler keys (never runtime.*) and the hidden counters.
func FuzzParseExpvar(f *testing.F) {
	for _, name := range []string{"expvar.json", "expvar_app.json", "stats.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`{"memstats": {"Sys": null, "NumGC": 1e400}}`))
	f.Add([]byte(`{"memstats": "x", "a": {}}`))
	known := map[string]bool{}
	for _, e := range expvarFields {
		known[e.key.key()] = true
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		values, err := parseExpvar(body)
		checkParsed(t, byKey(values), err, func(k string) bool { return known[k] && !strings.HasPrefix(k, "runtime.") })
	})
}

func BenchmarkParseExpvar(b *testing.B) {
	body := readTestdata(b, "expvar_app.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := parseExpvar(body); err != nil {
			b.Fatal(err)
		}
	}
}
