package mpecsgostats

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/testenv"
)

// prometheusTxtValues is testdata/prometheus.txt, captured from
// testdata/statsapp with STATSAPP_MODE=prometheus: a fresh process, no
// collection yet.
var prometheusTxtValues = map[string]float64{
	"runtime.goroutine_num":         7,
	"memory.memory_alloc":           194352,
	"memory.memory_sys":             7821576,
	"memory.memory_stack":           327680,
	"operation.memory_mallocs":      469,
	"operation.memory_frees":        0,
	"heap.heap_sys":                 3866624,
	"heap.heap_idle":                2359296,
	"heap.heap_inuse":               1507328,
	"heap.heap_released":            2359296,
	"gc.gc_num":                     0,
	"objects.heap_objects":          469,
	"allocation.memory_total_alloc": 194352,
	"gc._num_gc":                    0,
	"gc._pause_total_ns":            0,
}

// prometheusAppTxtValues is testdata/prometheus_app.txt, captured with
// STATSAPP_MODE=prometheus-app after 5 requests and 3 collections: the
// service's own series (statsapp_*) besides client_golang's.
var prometheusAppTxtValues = map[string]float64{
	"runtime.goroutine_num":         7,
	"memory.memory_alloc":           288112,
	"memory.memory_sys":             8755464,
	"memory.memory_stack":           360448,
	"operation.memory_mallocs":      2555,
	"operation.memory_frees":        1291,
	"heap.heap_sys":                 3833856,
	"heap.heap_idle":                2703360,
	"heap.heap_inuse":               1130496,
	"heap.heap_released":            2539520,
	"gc.gc_num":                     3,
	"objects.heap_objects":          1264,
	"allocation.memory_total_alloc": 516864,
	"gc._num_gc":                    3,
	"gc._pause_total_ns":            4797190, // go_gc_duration_seconds_sum 0.00479719
}

// gatheredAs is the default registry's answer (the test binary's own
// runtime) encoded as format.
func gatheredAs(t testing.TB, format expfmt.Format) []byte {
	t.Helper()
	return encodedAs(t, prometheus.DefaultGatherer, format)
}

func TestParsePrometheus(t *testing.T) {
	plain := readTestdata(t, "prometheus.txt")
	app := readTestdata(t, "prometheus_app.txt")
	goroutine := func(v float64) map[string]float64 { return map[string]float64{"runtime.goroutine_num": v} }
	gc := func(num, pauseNs float64) map[string]float64 {
		return map[string]float64{"gc.gc_num": num, "gc._num_gc": num, "gc._pause_total_ns": pauseNs}
	}
	processOnly := "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n" +
		"# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 0.03\n"
	tests := []struct {
		name    string
		body    []byte
		want    map[string]float64
		wantErr string
	}{
		{"real client_golang output", plain, prometheusTxtValues, ""},
		{"the service's own series are not returned", app, prometheusAppTxtValues, ""},
		{"a service's lines the parser would reject are never parsed",
			append(append([]byte("app_broken{ 1\n# TYPE app_x nonsense\n"), app...), "app_y{le=\"x\"} one\n"...), prometheusAppTxtValues, ""},
		{"a service's go_-named series are not returned",
			append(append([]byte{}, plain...), "# TYPE go_app_requests_total counter\ngo_app_requests_total{path=\"/\"} 5\ngo_memstats 1\n"...), prometheusTxtValues, ""},
		{"application labels that name go_ series are nothing",
			append(append([]byte{}, plain...), "app_alias{of=\"go_goroutines\"} 99\n"...), prometheusTxtValues, ""},
		{"cut at a line end: the lines before", app[:bytes.Index(app, []byte("# HELP process_"))], prometheusAppTxtValues, ""},
		{"no # TYPE lines: untyped samples", []byte("go_goroutines 3\ngo_gc_duration_seconds_count 2\ngo_gc_duration_seconds_sum 0.5\n"),
			map[string]float64{"runtime.goroutine_num": 3, "gc.gc_num": 2, "gc._num_gc": 2, "gc._pause_total_ns": 5e8}, ""},
		{"gc pauses as a histogram", []byte("# TYPE go_gc_duration_seconds histogram\ngo_gc_duration_seconds_bucket{le=\"+Inf\"} 4\n" +
			"go_gc_duration_seconds_sum 0.002\ngo_gc_duration_seconds_count 4\n"), gc(4, 2e6), ""},
		{"a summary without its sum has a sum of 0", []byte("# TYPE go_gc_duration_seconds summary\ngo_gc_duration_seconds_count 4\n"), gc(4, 0), ""},
		{"one sample with labels (a wrapping registerer's)", []byte("# TYPE go_goroutines gauge\ngo_goroutines{service=\"api\"} 9\n"), goroutine(9), ""},
		{"several samples of one series are left out", []byte("# TYPE go_goroutines gauge\ngo_goroutines{pod=\"a\"} 3\ngo_goroutines{pod=\"b\"} 4\ngo_threads 6\ngo_memstats_sys_bytes 1024\n"),
			map[string]float64{"memory.memory_sys": 1024}, ""},
		{"values that are not finite are left out", []byte("go_goroutines NaN\ngo_memstats_sys_bytes +Inf\ngo_memstats_alloc_bytes -Inf\ngo_memstats_frees_total 5\n" +
			"# TYPE go_gc_duration_seconds summary\ngo_gc_duration_seconds_sum NaN\ngo_gc_duration_seconds_count 1\n"),
			map[string]float64{"operation.memory_frees": 5}, ""},
		{"a name quoted in the braces", []byte("{\"go_goroutines\"} 11\n"), goroutine(11), ""},
		{"a control character in a label value", []byte("app_info{motd=\"\x1b[1mhi\"} 1\ngo_goroutines 5\n"), goroutine(5), ""},
		{"blanks before names and a timestamp", []byte("  \t# TYPE go_goroutines gauge\n\n\tgo_goroutines 12 1795613637000\n"), goroutine(12), ""},
		{"CRLF line ends", []byte("# TYPE go_goroutines gauge\r\ngo_goroutines 13\r\n"), nil,
			`invalid Prometheus text: line 1: unknown metric type "gauge\r"`},
		{"pause seconds round to whole nanoseconds", []byte("go_gc_duration_seconds_count 1\ngo_gc_duration_seconds_sum 1.0000000004e-05\n"), gc(1, 10000), ""},
		{"a go_ sample the parser rejects, by its line in the answer",
			bytes.Replace(app, []byte("go_goroutines 7\n"), []byte("go_goroutines seven\n"), 1), nil,
			`invalid Prometheus text: line 18: expected float as value, got "seven"`},
		{"a second TYPE of a go_ family", append(append([]byte{}, plain...), "# TYPE go_goroutines counter\n"...), nil,
			`invalid Prometheus text: line 129: second TYPE line for metric name "go_goroutines", or TYPE reported after samples`},
		{"truncated in a go_ sample: the sample has no value", plain[:bytes.Index(plain, []byte("go_goroutines 7"))+len("go_goroutin")], nil,
			`invalid Prometheus text: line 18: expected float as value, got ""`},
		{"truncated in one of the service's samples: the go_ lines before", app[:bytes.Index(app, []byte("statsapp_requests_total{code=\"200\""))+30],
			prometheusAppTxtValues, ""},
		{"truncated in the last line: the go_ lines before", app[:len(app)-20], prometheusAppTxtValues, ""},
		{"truncated in a comment of the service's: the go_ lines before", app[:bytes.Index(app, []byte("# HELP statsapp_requests_total"))+20],
			prometheusAppTxtValues, ""},
		{"no go_ series", []byte(processOnly), nil, "no go_* series: not a Go service's client_golang /metrics"},
		{"only go_ series the handler has no key for", []byte("# TYPE go_info gauge\ngo_info{version=\"go1.26.8\"} 1\ngo_threads 6\n"), nil,
			"no go_* series: not a Go service's client_golang /metrics"},
		{"go_ families without samples", []byte("# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\n"), nil,
			"no go_* series: not a Go service's client_golang /metrics"},
		{"empty body", []byte{}, nil, "no go_* series: not a Go service's client_golang /metrics"},
		{"the handler's output", readTestdata(t, "stats.json"), nil, "this is golang-stats-api-handler, not Prometheus text: use --format gostats"},
		{"the handler's output, pretty", readTestdata(t, "stats_pretty.json"), nil, "this is golang-stats-api-handler, not Prometheus text: use --format gostats"},
		{"expvar", readTestdata(t, "expvar.json"), nil, "this is expvar's /debug/vars, not Prometheus text: use --format expvar"},
		{"expvar with application variables", readTestdata(t, "expvar_app.json"), nil, "this is expvar's /debug/vars, not Prometheus text: use --format expvar"},
		{"expvar truncated", readTestdata(t, "expvar.json")[:100], nil, "this is expvar's /debug/vars, not Prometheus text: use --format expvar"},
		{"another service's JSON", []byte(`{"status":"ok","uptime":12}`), nil, "invalid Prometheus text: a JSON document"},
		{"a JSON array", []byte(" [1, 2]\n"), nil, "invalid Prometheus text: a JSON document"},
		{"an HTML page", []byte("<html><body>It works!</body></html>\n"), nil, "invalid Prometheus text: line 1: invalid metric name"},
		{"an HTML page after blank lines", []byte("\n\n<!DOCTYPE html>\n<html>\n"), nil, "invalid Prometheus text: line 3: invalid metric name"},
		{"plain text", []byte("statsapp\n"), nil, `invalid Prometheus text: line 1: expected float as value, got ""`},
		{"a redis error", []byte("-ERR unknown command 'GET'\r\n"), nil, "invalid Prometheus text: line 1: invalid metric name"},
		{"protobuf", gatheredAs(t, expfmt.FmtProtoDelim), nil, "invalid Prometheus text: binary, not text (protobuf? gzip?)"},
		{"gzip", []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"), nil, "invalid Prometheus text: binary, not text (protobuf? gzip?)"},
		{"OpenMetrics: its samples are read", encodedAs(t, fixedGoRegistry(), expfmt.FmtOpenMetrics_1_0_0), fixedGoValues, ""},
		{"the same series as text", encodedAs(t, fixedGoRegistry(), expfmt.FmtText), fixedGoValues, ""},
		{"no final newline", []byte("go_goroutines 7"), goroutine(7), ""},
		{"a capture without its final newline", bytes.TrimSuffix(plain, []byte("\n")), prometheusTxtValues, ""},
		{"go_memstats_lookups_total (client_golang before 1.20)", []byte("# TYPE go_memstats_lookups_total counter\ngo_memstats_lookups_total 2089\n"),
			map[string]float64{"operation.memory_lookups": 2089}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertParse(t, readAs(prometheusFormat{}), tt.body, tt.want, tt.wantErr)
		})
	}
}

// TestParsePrometheusErrorsAreOneLine: whatever the parser says of a body
// stays on one line, and short.
func TestParsePrometheusErrorsAreOneLine(t *testing.T) {
	for _, body := range []string{
		"go_goroutines " + strings.Repeat("x", 10000) + "\n",
		"go_goroutines{a=\"" + strings.Repeat("\\n", 5000) + "\"} z\n",
		"<" + strings.Repeat("y", 10000) + "\n",
	} {
		_, err := parsePrometheus([]byte(body))
		if err == nil || strings.Contains(err.Error(), "\n") || len(err.Error()) > 200 {
			t.Errorf("err = %q", err)
		}
	}
}

// TestPrometheusKeysAreTheHandlers: the app capture parses to its values,
// and a client_golang target read twice prints the handler's keys: only
// the cgo call and pointer lookup counts (which client_golang 1.20 and
// later have not) are missing; the gc rates are derived from the hidden
// counters.
func TestPrometheusKeysAreTheHandlers(t *testing.T) {
	values, err := parsePrometheus(readTestdata(t, "prometheus_app.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := byKey(values); !reflect.DeepEqual(got, prometheusAppTxtValues) {
		t.Errorf("parsed\n %v\nwant\n %v", got, prometheusAppTxtValues)
	}
	t0 := time.Unix(1795613637, 0)
	target := target{ContainerID: "aaa", PrivatePort: 8080}
	read := how{format: prometheusFormat{}}
	_, last := rateRun(t, []result{{target: target, key: "k", how: read, values: values}}, state{}, t0)
	lines, _ := rateRun(t, []result{{target: target, key: "k", how: read, values: values}}, last, t0.Add(time.Minute))
	var printed []string
	for _, l := range lines {
		printed = append(printed, strings.TrimPrefix(l.key, "gostats.k."))
	}
	want := []string{ // the handler's keys, in metricDefs order, less runtime.cgo_call_num and operation.memory_lookups
		"runtime.goroutine_num", "memory.memory_alloc", "memory.memory_sys", "memory.memory_stack",
		"operation.memory_mallocs", "operation.memory_frees", "heap.heap_sys", "heap.heap_idle", "heap.heap_inuse",
		"heap.heap_released", "gc.gc_num", "gc.gc_per_second", "gc.gc_pause_per_second", "objects.heap_objects",
		"allocation.memory_total_alloc",
	}
	if !slices.Equal(printed, want) {
		t.Errorf("printed %q\nwant    %q", printed, want)
	}
}

// TestParsePrometheusLive reads the answer of the real promhttp handler of
// the default registry, asked as a scrape asks.
func TestParsePrometheusLive(t *testing.T) {
	runtime.GC()
	srv := httptest.NewServer(promhttp.Handler())
	defer srv.Close()
	body, contentType := getMetrics(t, srv.URL, acceptHeader(prometheusFormat{}.mediaRange()))
	if got := recognisedAs(contentType, body); got != "prometheus" {
		t.Errorf("recognised as %q", got)
	}
	values, err := parsePrometheus(body)
	if err != nil {
		t.Fatal(err)
	}
	checkLiveValues(t, byKey(values))
}

// checkLiveValues checks the values of this process's default registry:
// those of testdata/prometheus.txt, each plausible.
func checkLiveValues(t *testing.T, got map[string]float64) {
	t.Helper()
	if len(got) != len(prometheusTxtValues) {
		t.Errorf("got %d values, want %d: %v", len(got), len(prometheusTxtValues), got)
	}
	for _, k := range []string{"runtime.goroutine_num", "memory.memory_sys", "memory.memory_alloc", "heap.heap_sys", "objects.heap_objects",
		"operation.memory_mallocs", "allocation.memory_total_alloc", "gc.gc_num", "gc._num_gc", "gc._pause_total_ns"} {
		if got[k] <= 0 {
			t.Errorf("%s = %v, want > 0", k, got[k])
		}
	}
	if got["heap.heap_inuse"] > got["heap.heap_sys"] || got["memory.memory_sys"] < got["heap.heap_sys"] {
		t.Errorf("implausible values: %v", got)
	}
}

// openMetricsAccept is what a scraper that prefers OpenMetrics asks for.
const openMetricsAccept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"

// TestPrometheusAcceptGetsText: the scrape's Accept (and the probe's) gets
// the text format from a handler that would answer OpenMetrics to a
// scraper preferring it; either answer is read.
func TestPrometheusAcceptGetsText(t *testing.T) {
	srv := httptest.NewServer(promhttp.HandlerFor(fixedGoRegistry(), promhttp.HandlerOpts{EnableOpenMetrics: true}))
	defer srv.Close()
	for _, tt := range []struct{ accept, mediaType string }{
		{acceptHeader(prometheusFormat{}.mediaRange()), "text/plain"},
		{scraper{formats: testFormats}.probeAccept(), "text/plain"},
		{openMetricsAccept, "application/openmetrics-text"},
	} {
		body, contentType := getMetrics(t, srv.URL, tt.accept)
		if mt, params, _ := mime.ParseMediaType(contentType); mt != tt.mediaType || mt == "text/plain" && params["version"] != "0.0.4" {
			t.Errorf("Accept %s: Content-Type %s, want %s", tt.accept, contentType, tt.mediaType)
		}
		if got := recognisedAs(contentType, body); got != "prometheus" {
			t.Errorf("Accept %s: recognised as %q", tt.accept, got)
		}
		assertParse(t, parseBy(parsePrometheus), body, fixedGoValues, "")
	}
}

// TestParseOpenMetricsLive: OpenMetrics as client_golang's promhttp sends
// it (EnableOpenMetrics, asked for it), of the default registry, and of a
// target that sends it whatever it is asked: a scrape with --format
// prometheus reads it.
func TestParseOpenMetricsLive(t *testing.T) {
	runtime.GC()
	srv := httptest.NewServer(promhttp.HandlerFor(prometheus.DefaultGatherer, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	defer srv.Close()
	body, contentType := getMetrics(t, srv.URL, openMetricsAccept)
	if mt, _, _ := mime.ParseMediaType(contentType); mt != "application/openmetrics-text" || !bytes.HasSuffix(body, []byte("# EOF\n")) {
		t.Fatalf("Content-Type %s, body ending %q: not OpenMetrics", contentType, body[max(0, len(body)-20):])
	}
	values, err := parsePrometheus(body)
	if err != nil {
		t.Fatal(err)
	}
	checkLiveValues(t, byKey(values))

	// a target that answers OpenMetrics to the scrape's Accept
	openMetricsOnly := promhttp.HandlerFor(fixedGoRegistry(), promhttp.HandlerOpts{EnableOpenMetrics: true})
	stubborn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Accept", openMetricsAccept)
		openMetricsOnly.ServeHTTP(w, r)
	}))
	defer stubborn.Close()
	r := scrapeURL(t, prometheusFormat{}, stubborn.URL+"/metrics", 2*time.Second)
	if r.cause != nil {
		t.Fatal(r.cause)
	}
	if got := byKey(r.values); !reflect.DeepEqual(got, fixedGoValues) {
		t.Errorf("scraped\n %v\nwant\n %v", got, fixedGoValues)
	}
}

// fixedGoValues are the values of fixedGoRegistry's series, as read.
var fixedGoValues = map[string]float64{
	"runtime.goroutine_num":         9,
	"memory.memory_alloc":           288112,
	"memory.memory_sys":             8755464,
	"memory.memory_stack":           360448,
	"operation.memory_lookups":      42,
	"operation.memory_mallocs":      2555,
	"operation.memory_frees":        1291,
	"heap.heap_sys":                 3833856,
	"heap.heap_idle":                2703360,
	"heap.heap_inuse":               1130496,
	"heap.heap_released":            2539520,
	"gc.gc_num":                     5,
	"objects.heap_objects":          1264,
	"allocation.memory_total_alloc": 516864,
	"gc._num_gc":                    5,
	"gc._pause_total_ns":            12500000, // 0.0125 s
}

// fixedGoRegistry is a registry of go_* series as client_golang's Go
// collector names and types them (go_memstats_lookups_total as before
// 1.20), with the values of fixedGoValues: what a real encoder and a real
// promhttp handler make of them, in either format, is exact.
func fixedGoRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	gauge := func(name string, v float64) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "Test gauge " + name + "."})
		g.Set(v)
		reg.MustRegister(g)
	}
	counter := func(name string, v float64) {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "Test counter " + name + "."})
		c.Add(v)
		reg.MustRegister(c)
	}
	gauge("go_goroutines", 9)
	gauge("go_memstats_alloc_bytes", 288112)
	counter("go_memstats_alloc_bytes_total", 516864)
	gauge("go_memstats_sys_bytes", 8755464)
	gauge("go_memstats_stack_inuse_bytes", 360448)
	counter("go_memstats_lookups_total", 42)
	counter("go_memstats_mallocs_total", 2555)
	counter("go_memstats_frees_total", 1291)
	gauge("go_memstats_heap_sys_bytes", 3833856)
	gauge("go_memstats_heap_idle_bytes", 2703360)
	gauge("go_memstats_heap_inuse_bytes", 1130496)
	gauge("go_memstats_heap_released_bytes", 2539520)
	gauge("go_memstats_heap_objects", 1264)
	gauge("go_threads", 11)
	reg.MustRegister(constMetric{prometheus.MustNewConstSummary(
		prometheus.NewDesc("go_gc_duration_seconds", "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", nil, nil),
		5, 0.0125, map[float64]float64{0: 0.001, 0.5: 0.0025, 1: 0.004})})
	return reg
}

// constMetric collects one constant metric.
type constMetric struct{ m prometheus.Metric }

func (c constMetric) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.Desc() }
func (c constMetric) Collect(ch chan<- prometheus.Metric) { ch <- c.m }

// encodedAs is what a registry gathers, encoded as format.
func encodedAs(t testing.TB, reg prometheus.Gatherer, format expfmt.Format) []byte {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		c.Close()
	}
	return buf.Bytes()
}

// getMetrics GETs url as the plugin does (the transport asks for gzip and
// takes it off), at most maxPrometheusBodyBytes.
func getMetrics(t *testing.T, url, accept string) ([]byte, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPrometheusBodyBytes+1))
	if err != nil || resp.StatusCode != http.StatusOK || len(body) > maxPrometheusBodyBytes {
		t.Fatalf("%s: %v, %d bytes, err %v", url, resp.Status, len(body), err)
	}
	return body, resp.Header.Get("Content-Type")
}

// FuzzParsePrometheus: any body gives values or an error, never a panic;
// only the handler's keys client_golang has and the hidden counters, and
// finite values.
func FuzzParsePrometheus(f *testing.F) {
	for _, name := range []string{"prometheus.txt", "prometheus_app.txt", "stats.json", "expvar.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte("go_goroutines NaN\n{\"go_threads\"} 1\n# TYPE go_gc_duration_seconds histogram\ngo_gc_duration_seconds_sum 1e308\ngo_gc_duration_seconds_count 1\n"))
	f.Add([]byte("# TYPE go_gc_duration_seconds summary\ngo_gc_duration_seconds{quantile=\"0.5\"} 1\ngo_gc_duration_seconds_count 18446744073709551615\n"))
	f.Add([]byte("go_memstats_sys_bytes{a=\"b\",a=\"c\"} 1\n# EOF\n"))
	known := map[string]bool{"gc.gc_num": true, "gc._num_gc": true, "gc._pause_total_ns": true}
	for _, s := range prometheusSeries {
		known[s.key.key()] = true
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		values, err := parsePrometheus(body)
		checkParsed(t, byKey(values), err, func(k string) bool { return known[k] })
		for k, v := range values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Errorf("%s = %v", k.key(), v)
			}
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error of more than one line: %q", err)
		}
	})
}

// bigMetrics is the app capture among the lines of 10,000 more series of
// the service's own, in 100 families sorted around client_golang's as
// promhttp sorts them: about 1 MiB.
func bigMetrics(tb testing.TB) []byte {
	app := readTestdata(tb, "prometheus_app.txt")
	var before, after bytes.Buffer
	for f := range 100 {
		buf, name := &before, fmt.Sprintf("api_http_request_duration_seconds_%02d", f)
		if f >= 50 {
			buf, name = &after, fmt.Sprintf("worker_queue_job_latency_seconds_%02d", f)
		}
		fmt.Fprintf(buf, "# HELP %s Time to answer a request, by handler, method and code.\n# TYPE %s histogram\n", name, name)
		for i := range 100 {
			fmt.Fprintf(buf, "%s_bucket{handler=\"/api/v1/items/%04d\",method=\"GET\",code=\"200\",le=\"%g\"} %d\n", name, i, float64(i%10)/10, 1000+i*37)
		}
	}
	body := slices.Concat(before.Bytes(), app, after.Bytes())
	if n := bytes.Count(body, []byte("\n")); n < 10000 || len(body) < 1<<20 || len(body) > maxPrometheusBodyBytes {
		tb.Fatalf("%d lines, %d bytes", n, len(body))
	}
	return body
}

// TestParsePrometheusBig: the go_* series of an answer whose service has
// 10,000 series of its own.
func TestParsePrometheusBig(t *testing.T) {
	assertParse(t, parseBy(parsePrometheus), bigMetrics(t), prometheusAppTxtValues, "")
}

// BenchmarkParsePrometheus: a 1 MiB answer with 10,000 series of the
// service's own (the budget: at most 10 ms of CPU), and the bare capture.
func BenchmarkParsePrometheus(b *testing.B) {
	for _, bm := range []struct {
		name string
		body []byte
	}{
		{"1MiB_10000_app_series", bigMetrics(b)},
		{"capture", readTestdata(b, "prometheus_app.txt")},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.body)))
			start := cpuTime(b)
			for b.Loop() {
				if _, err := parsePrometheus(bm.body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the CPU time of the process so far, user and system, of all
// its threads (the garbage collector's among them): what a parse costs the
// machine, which a busy machine inflates less than the wall time of ns/op.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkExpfmtWholeBody is what the line filter saves: the parser over
// all of the 1 MiB answer.
func BenchmarkExpfmtWholeBody(b *testing.B) {
	body := bigMetrics(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	start := cpuTime(b)
	for b.Loop() {
		parser := expfmt.NewTextParser(model.UTF8Validation)
		if _, err := parser.TextToMetricFamilies(bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// publishedDir holds real /metrics answers of Go programs published by
// others, byte for byte, with their sources (SOURCES.md): beside the
// repository, read in place.
var publishedDir = filepath.Join("..", "..", "shared", "published", "peer", "prom")

// TestParsePublished reads each published answer as a scrape with --format
// prometheus does (and --format auto recognises it) into the values read
// from the file by hand: client_golang before its memstats collector
// (2015), with go_memstats_lookups_total (2017, etcd), after 1.20 with the
// runtime/metrics series (kube-apiserver, Prometheus 3), a body without its
// final newline (2017), one ending in # EOF (Prometheus 3), and a Go
// program whose /metrics has no go_* series at all.
func TestParsePublished(t *testing.T) {
	if _, err := os.Stat(publishedDir); err != nil {
		testenv.SkipUnlessCI(t, "no published /metrics answers beside the repository: "+err.Error())
	}
	gc := func(v map[string]float64, num, pauseNs float64) map[string]float64 {
		v["gc.gc_num"], v["gc._num_gc"], v["gc._pause_total_ns"] = num, num, pauseNs
		return v
	}
	tests := []struct {
		file    string
		want    map[string]float64
		wantErr string
	}{
		{"prometheus-0.x-2015.txt", map[string]float64{"runtime.goroutine_num": 70}, ""},
		{"prometheus-1.x-2017.txt", gc(map[string]float64{ // no heap_released: go_memstats_heap_released_bytes_total then
			"runtime.goroutine_num":         33,
			"memory.memory_alloc":           1.7518624e+07,
			"memory.memory_sys":             3.2205048e+07,
			"memory.memory_stack":           1.6384e+06,
			"operation.memory_lookups":      2089,
			"operation.memory_mallocs":      4.729335e+06,
			"operation.memory_frees":        4.65658e+06,
			"heap.heap_sys":                 2.5624576e+07,
			"heap.heap_idle":                6.668288e+06,
			"heap.heap_inuse":               1.8956288e+07,
			"objects.heap_objects":          72755,
			"allocation.memory_total_alloc": 8.3062296e+08,
		}, 99, 12139815), ""}, // go_gc_duration_seconds_sum 0.012139815
		{"etcd-3.5.21.txt", gc(map[string]float64{
			"runtime.goroutine_num":         481,
			"memory.memory_alloc":           1.1905632e+07,
			"memory.memory_sys":             4.1506056e+07,
			"memory.memory_stack":           4.42368e+06,
			"operation.memory_lookups":      0,
			"operation.memory_mallocs":      706473,
			"operation.memory_frees":        653284,
			"heap.heap_sys":                 2.9130752e+07,
			"heap.heap_idle":                1.114112e+07,
			"heap.heap_inuse":               1.7989632e+07,
			"heap.heap_released":            3.76832e+06,
			"objects.heap_objects":          53189,
			"allocation.memory_total_alloc": 1.47799368e+08,
		}, 24, 30809834), ""}, // 0.030809834
		{"kube-apiserver-1.34.0.txt", gc(map[string]float64{
			"runtime.goroutine_num":         2363,
			"memory.memory_alloc":           1.3925012e+08,
			"memory.memory_sys":             2.3513324e+08,
			"memory.memory_stack":           1.9726336e+07,
			"operation.memory_mallocs":      5.88025e+06,
			"operation.memory_frees":        4.912919e+06,
			"heap.heap_sys":                 2.02571776e+08,
			"heap.heap_idle":                2.8352512e+07,
			"heap.heap_inuse":               1.74219264e+08,
			"heap.heap_released":            3.457024e+06,
			"objects.heap_objects":          967331,
			"allocation.memory_total_alloc": 6.83138904e+08,
		}, 21, 5377998), ""}, // 0.005377998
		{"prometheus-3.1.0-demo.txt", gc(map[string]float64{
			"runtime.goroutine_num":         151,
			"memory.memory_alloc":           8.3523288e+07,
			"memory.memory_sys":             2.39909176e+08,
			"memory.memory_stack":           2.818048e+06,
			"operation.memory_mallocs":      5.2352353206e+10,
			"operation.memory_frees":        5.2351772989e+10,
			"heap.heap_sys":                 2.19332608e+08,
			"heap.heap_idle":                1.23691008e+08,
			"heap.heap_inuse":               9.56416e+07,
			"heap.heap_released":            1.05897984e+08,
			"objects.heap_objects":          580217,
			"allocation.memory_total_alloc": 5.937322571024e+12,
		}, 190932, 44985611511), ""}, // 44.985611511
		{"kube-state-metrics-2.16.0.txt", nil, "no go_* series: not a Go service's client_golang /metrics"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(publishedDir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			assertParse(t, readAs(prometheusFormat{}), body, tt.want, tt.wantErr)
			wantFormat := "prometheus"
			if tt.want == nil {
				wantFormat = ""
			}
			if got := recognisedAs("text/plain; version=0.0.4; charset=utf-8", body); got != wantFormat {
				t.Errorf("recognised as %q, want %q", got, wantFormat)
			}
		})
	}
}
