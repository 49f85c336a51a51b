package mpecsgostats

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	stats_api "github.com/fukata/golang-stats-api-handler"
	"github.com/prometheus/common/expfmt"
)

// Content-Types as the real handlers send them.
const (
	ctJSON       = "application/json"                // golang-stats-api-handler
	ctExpvar     = "application/json; charset=utf-8" // expvar
	ctPrometheus = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
	ctHTML       = "text/html; charset=utf-8"
	ctText       = "text/plain; charset=utf-8"
	ctProtobuf   = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=underscores"
)

// recognisedAs is the name of the first of the plugin's formats that
// recognises an answer, "" for none: what --format auto's probe decides.
func recognisedAs(contentType string, body []byte) string {
	if f := testFormats.recognise(contentType, body); f != nil {
		return f.name()
	}
	return ""
}

// TestRecognise: what the formats' recognise make of each kind of answer a
// probe may get, in the order the run probes them.
func TestRecognise(t *testing.T) {
	prom := readTestdata(t, "prometheus.txt")
	app := readTestdata(t, "prometheus_app.txt")
	expvarJSON := readTestdata(t, "expvar.json")
	stats := readTestdata(t, "stats.json")
	processOnly := "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n" +
		"# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 0.03\n"
	tests := []struct {
		name, contentType string
		body              []byte
		want              string
	}{
		{"golang-stats-api-handler", ctJSON, readTestdata(t, "stats.json"), "gostats"},
		{"golang-stats-api-handler, no Content-Type", "", readTestdata(t, "stats.json"), "gostats"},
		{"golang-stats-api-handler, pretty", ctJSON, readTestdata(t, "stats_pretty.json"), "gostats"},
		{"golang-stats-api-handler after collections", ctJSON, readTestdata(t, "stats_gc.json"), "gostats"},
		{"golang-stats-api-handler sent as text/plain", ctText, readTestdata(t, "stats.json"), "gostats"},
		{"golang-stats-api-handler, cut short", ctJSON, stats[:bytes.Index(stats, []byte(`"goroutine_num"`))+20], "gostats"},
		{"golang-stats-api-handler, cut before its first metric", ctJSON, stats[:bytes.Index(stats, []byte(`"goroutine_num"`))], ""},
		{"one field of the handler's", "", []byte(`{"status": {"ok": [true]}, "goroutine_num": 4}`), "gostats"},
		{"expvar", ctExpvar, expvarJSON, "expvar"},
		{"expvar with application variables", ctExpvar, readTestdata(t, "expvar_app.json"), "expvar"},
		{"expvar, cut short after memstats began", ctExpvar, expvarJSON[:100], "expvar"},
		{"expvar with an application variable named as a handler field", ctExpvar,
			[]byte(`{"cmdline": ["/app"], "memory_alloc": [1, {"a": 2}], "memstats": {"Alloc": 1}}`), "expvar"},
		{"memstats that is not an object", ctExpvar, []byte(`{"memstats": "Alloc"}`), ""},
		{"memstats inside another variable", ctExpvar, []byte(`{"app": {"memstats": {}}, "cmdline": []}`), ""},
		{"client_golang", ctPrometheus, prom, "prometheus"},
		{"client_golang, no Content-Type", "", prom, "prometheus"},
		{"client_golang with the service's series", ctPrometheus, app, "prometheus"},
		{"client_golang behind 10,000 series of the service's", ctPrometheus, bigMetrics(t), "prometheus"},
		{"client_golang with a wrong Content-Type", ctHTML, app, "prometheus"},
		{"OpenMetrics", string(expfmt.FmtOpenMetrics_1_0_0), gatheredAs(t, expfmt.FmtOpenMetrics_1_0_0), "prometheus"},
		{"a sample name quoted in braces", "", []byte("{\"go_goroutines\"} 7\n"), "prometheus"},
		{"go_ samples without comments", "", []byte("go_goroutines 7\n"), "prometheus"},
		{"Prometheus text without go_ series", ctPrometheus, []byte(processOnly), ""},
		{"Prometheus text without go_ series, no Content-Type", "", []byte(processOnly), ""},
		{"only go_ comments", ctPrometheus, []byte("# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\n"), ""},
		{"protobuf", ctProtobuf, gatheredAs(t, expfmt.FmtProtoDelim), ""},
		{"nginx's page", ctHTML, []byte("<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n</html>\n"), ""},
		{"an HTML page sent as text/plain", ctText, []byte("<html><body>It works!</body></html>\n"), ""},
		{"an HTML page that mentions go_goroutines", "", []byte("<html>\n<body>\ngo_goroutines 7\n</body>\n</html>\n"), ""},
		{"redis", "", []byte("-ERR wrong number of arguments for 'get' command\r\n"), ""},
		{"redis, PONG", "", []byte("+PONG\r\n"), ""},
		{"plain text", ctText, []byte("statsapp\n"), ""},
		{"plain text with a number", ctText, []byte("OK 1\n"), ""},
		{"another service's JSON", ctJSON, []byte(`{"status":"ok","uptime":12}`), ""},
		{"a JSON array", ctJSON, []byte(`[{"goroutine_num": 1}]`), ""},
		{"JSON that breaks off", ctJSON, []byte(`{"status": `), ""},
		{"empty", "", nil, ""},
		{"empty text/plain", ctText, []byte{}, ""},
		{"white space", ctText, []byte(" \n\t\r\n"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := recognisedAs(tt.contentType, tt.body); got != tt.want {
				t.Errorf("recognise(%q, %q...) = %q, want %q", tt.contentType, truncate(string(tt.body), 40), got, tt.want)
			}
		})
	}
}

// TestRecogniseParses: an answer recognised as a format is one its parser
// reads.
func TestRecogniseParses(t *testing.T) {
	for _, tt := range []struct{ file, format string }{
		{"stats.json", "gostats"}, {"stats_pretty.json", "gostats"}, {"stats_gc.json", "gostats"},
		{"expvar.json", "expvar"}, {"expvar_app.json", "expvar"},
		{"prometheus.txt", "prometheus"}, {"prometheus_app.txt", "prometheus"},
	} {
		body := readTestdata(t, tt.file)
		f := testFormats.recognise("", body)
		if f == nil || f.name() != tt.format {
			t.Errorf("%s: recognised as %v, want %s", tt.file, f, tt.format)
			continue
		}
		if _, err := f.parse(body); err != nil {
			t.Errorf("%s: recognised as %s: %v", tt.file, f.name(), err)
		}
	}
}

// TestRecogniseLive: the answers of the real handlers as served.
func TestRecogniseLive(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(stats_api.Handler))
	defer srv.Close()
	body, contentType := getMetrics(t, srv.URL, "*/*")
	if got := recognisedAs(contentType, body); got != "gostats" {
		t.Errorf("golang-stats-api-handler (%s): %q", contentType, got)
	}
}

// FuzzRecognise: never a panic, only the formats, and JSON without a JSON
// object is never one of the JSON formats.
func FuzzRecognise(f *testing.F) {
	for _, name := range []string{"stats.json", "expvar.json", "prometheus.txt"} {
		f.Add("", readTestdata(f, name))
	}
	f.Add(ctProtobuf, []byte("\x0a\x16go_gc_duration_seconds"))
	f.Add(ctPrometheus, []byte("{\"go_goroutines\"} 7\n"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		switch got := recognisedAs(contentType, body); got {
		case "", "prometheus":
		case "gostats", "expvar":
			if firstNonSpace(body) != '{' {
				t.Errorf("%q of a body that is no JSON object", got)
			}
		default:
			t.Errorf("unknown format %q", got)
		}
	})
}

// BenchmarkRecognise: what deciding costs on each kind of answer.
func BenchmarkRecognise(b *testing.B) {
	for _, bm := range []struct {
		name, contentType string
		body              []byte
	}{
		{"gostats", ctJSON, readTestdata(b, "stats_gc.json")},
		{"expvar_app", ctExpvar, readTestdata(b, "expvar_app.json")},
		{"prometheus_app", ctPrometheus, readTestdata(b, "prometheus_app.txt")},
		{"prometheus_1MiB_no_go_series", ctPrometheus, bytes.ReplaceAll(bigMetrics(b), []byte("\ngo_"), []byte("\nzz_go_"))},
		{"html", ctHTML, []byte("<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n</html>\n")},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				testFormats.recognise(bm.contentType, bm.body)
			}
		})
	}
}

// TestFormatList: the plugin's formats, in the order --format lists them
// and --format auto probes them, each found by its name.
func TestFormatList(t *testing.T) {
	if got, want := testFormats.names(), []string{"gostats", "prometheus", "expvar"}; !slices.Equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
	for _, name := range testFormats.names() {
		if f := testFormats.named(name); f == nil || f.name() != name {
			t.Errorf("named(%q) = %v", name, f)
		}
	}
	for _, name := range []string{"auto", "json", ""} {
		if f := testFormats.named(name); f != nil {
			t.Errorf("named(%q) = %s, want none", name, f.name())
		}
	}
	if got, want := (scraper{formats: testFormats}).probePaths(), []string{"/stats", "/metrics", "/debug/vars"}; !slices.Equal(got, want) {
		t.Errorf("probe paths %q, want %q", got, want)
	}
}

// TestReadHints: an answer of another format than the one asked for is an
// error that names the --format to use; an answer no format recognises is
// the parser's own error.
func TestReadHints(t *testing.T) {
	stats, vars, prom := readTestdata(t, "stats.json"), readTestdata(t, "expvar.json"), readTestdata(t, "prometheus.txt")
	tests := []struct {
		f           format
		contentType string
		body        []byte
		want        string
	}{
		{gostatsFormat{}, ctExpvar, vars, "this is expvar's /debug/vars, not golang-stats-api-handler: use --format expvar"},
		{gostatsFormat{}, ctPrometheus, prom, "this is Prometheus text, not golang-stats-api-handler: use --format prometheus"},
		{expvarFormat{}, ctJSON, stats, "this is golang-stats-api-handler, not expvar's /debug/vars: use --format gostats"},
		{expvarFormat{}, ctPrometheus, prom, "this is Prometheus text, not expvar's /debug/vars: use --format prometheus"},
		{prometheusFormat{}, ctJSON, stats, "this is golang-stats-api-handler, not Prometheus text: use --format gostats"},
		{prometheusFormat{}, ctExpvar, vars, "this is expvar's /debug/vars, not Prometheus text: use --format expvar"},
		{gostatsFormat{}, ctHTML, []byte("<html></html>"), "invalid stats JSON: invalid character '<' looking for beginning of value"},
		{expvarFormat{}, ctJSON, []byte(`{"status":"ok"}`), "no memstats in response: not expvar's /debug/vars"},
		{prometheusFormat{}, ctText, []byte("statsapp\n"), `invalid Prometheus text: line 1: expected float as value, got ""`},
	}
	for _, tt := range tests {
		v, err := testFormats.read(tt.f, tt.contentType, tt.body)
		if v != nil || err == nil || err.Error() != tt.want {
			t.Errorf("%s of %q...: values %v, err %v\nwant %s", tt.f.name(), truncate(string(tt.body), 30), v, err, tt.want)
		}
	}
	// what the asked format reads is read, whatever another would say
	if v, err := testFormats.read(gostatsFormat{}, ctJSON, stats); err != nil || len(v) == 0 {
		t.Errorf("gostats of stats.json: %v, %v", v, err)
	}
}

// TestAcceptHeader: a scrape asks for its format's media range, a probe for
// every format's in probing order, each once; anything else at a low
// weight.
func TestAcceptHeader(t *testing.T) {
	tests := []struct {
		ranges []string
		want   string
	}{
		{[]string{gostatsFormat{}.mediaRange()}, "application/json, */*;q=0.1"},
		{[]string{prometheusFormat{}.mediaRange()}, "text/plain;version=0.0.4, */*;q=0.1"},
		{[]string{expvarFormat{}.mediaRange()}, "application/json, */*;q=0.1"},
		{nil, "*/*;q=0.1"},
		{[]string{""}, "*/*;q=0.1"},
		{[]string{"a/a", "b/b", "c/c", "d/d", "e/e", "f/f", "g/g", "h/h", "i/i", "j/j"},
			"a/a, b/b;q=0.9, c/c;q=0.8, d/d;q=0.7, e/e;q=0.6, f/f;q=0.5, g/g;q=0.4, h/h;q=0.3, i/i;q=0.2, j/j;q=0.2, */*;q=0.1"},
	}
	for _, tt := range tests {
		if got := acceptHeader(tt.ranges...); got != tt.want {
			t.Errorf("acceptHeader(%q) = %q, want %q", tt.ranges, got, tt.want)
		}
	}
	if got, want := (scraper{formats: testFormats}).probeAccept(), "application/json, text/plain;version=0.0.4;q=0.9, */*;q=0.1"; got != want {
		t.Errorf("the probe's Accept %q, want %q", got, want)
	}
}
