package mpecsgostats

import (
	"bytes"
	"net/http"
	"net/http/httptest"
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

func TestDetectFormat(t *testing.T) {
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
		{"golang-stats-api-handler", ctJSON, readTestdata(t, "stats.json"), formatGostats},
		{"golang-stats-api-handler, no Content-Type", "", readTestdata(t, "stats.json"), formatGostats},
		{"golang-stats-api-handler, pretty", ctJSON, readTestdata(t, "stats_pretty.json"), formatGostats},
		{"golang-stats-api-handler after collections", ctJSON, readTestdata(t, "stats_gc.json"), formatGostats},
		{"golang-stats-api-handler sent as text/plain", ctText, readTestdata(t, "stats.json"), formatGostats},
		{"golang-stats-api-handler, cut short", ctJSON, stats[:bytes.Index(stats, []byte(`"goroutine_num"`))+20], formatGostats},
		{"golang-stats-api-handler, cut before its first metric", ctJSON, stats[:bytes.Index(stats, []byte(`"goroutine_num"`))], ""},
		{"one field of the handler's", "", []byte(`{"status": {"ok": [true]}, "goroutine_num": 4}`), formatGostats},
		{"expvar", ctExpvar, expvarJSON, formatExpvar},
		{"expvar with application variables", ctExpvar, readTestdata(t, "expvar_app.json"), formatExpvar},
		{"expvar, cut short after memstats began", ctExpvar, expvarJSON[:100], formatExpvar},
		{"expvar with an application variable named as a handler field", ctExpvar,
			[]byte(`{"cmdline": ["/app"], "memory_alloc": [1, {"a": 2}], "memstats": {"Alloc": 1}}`), formatExpvar},
		{"memstats that is not an object", ctExpvar, []byte(`{"memstats": "Alloc"}`), ""},
		{"memstats inside another variable", ctExpvar, []byte(`{"app": {"memstats": {}}, "cmdline": []}`), ""},
		{"client_golang", ctPrometheus, prom, formatPrometheus},
		{"client_golang, no Content-Type", "", prom, formatPrometheus},
		{"client_golang with the service's series", ctPrometheus, app, formatPrometheus},
		{"client_golang behind 10,000 series of the service's", ctPrometheus, bigMetrics(t), formatPrometheus},
		{"client_golang with a wrong Content-Type", ctHTML, app, formatPrometheus},
		{"OpenMetrics", string(expfmt.FmtOpenMetrics_1_0_0), gatheredAs(t, expfmt.FmtOpenMetrics_1_0_0), formatPrometheus},
		{"a sample name quoted in braces", "", []byte("{\"go_goroutines\"} 7\n"), formatPrometheus},
		{"go_ samples without comments", "", []byte("go_goroutines 7\n"), formatPrometheus},
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
			if got := detectFormat(tt.contentType, tt.body); got != tt.want {
				t.Errorf("detectFormat(%q, %q...) = %q, want %q", tt.contentType, truncate(string(tt.body), 40), got, tt.want)
			}
		})
	}
}

// TestDetectFormatParses: an answer detected as a format is one its parser
// reads.
func TestDetectFormatParses(t *testing.T) {
	parsers := map[string]func([]byte) (map[string]float64, error){
		formatGostats:    parseStats,
		formatExpvar:     parseExpvar,
		formatPrometheus: parsePrometheus,
	}
	for _, name := range []string{"stats.json", "stats_pretty.json", "stats_gc.json", "expvar.json", "expvar_app.json", "prometheus.txt", "prometheus_app.txt"} {
		body := readTestdata(t, name)
		f := detectFormat("", body)
		if _, err := parsers[f](body); err != nil {
			t.Errorf("%s: detected as %q: %v", name, f, err)
		}
	}
}

// TestDetectFormatLive: the answers of the real handlers as served.
func TestDetectFormatLive(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(stats_api.Handler))
	defer srv.Close()
	body, contentType := getMetrics(t, srv.URL, "*/*")
	if got := detectFormat(contentType, body); got != formatGostats {
		t.Errorf("golang-stats-api-handler (%s): %q", contentType, got)
	}
}

// FuzzDetectFormat: never a panic, only the formats, and JSON without a
// JSON object is never one of the JSON formats.
func FuzzDetectFormat(f *testing.F) {
	for _, name := range []string{"stats.json", "expvar.json", "prometheus.txt"} {
		f.Add("", readTestdata(f, name))
	}
	f.Add(ctProtobuf, []byte("\x0a\x16go_gc_duration_seconds"))
	f.Add(ctPrometheus, []byte("{\"go_goroutines\"} 7\n"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		switch got := detectFormat(contentType, body); got {
		case "", formatPrometheus:
		case formatGostats, formatExpvar:
			if firstNonSpace(body) != '{' {
				t.Errorf("%q of a body that is no JSON object", got)
			}
		default:
			t.Errorf("unknown format %q", got)
		}
	})
}

// BenchmarkDetectFormat: what deciding costs on each kind of answer.
func BenchmarkDetectFormat(b *testing.B) {
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
				detectFormat(bm.contentType, bm.body)
			}
		})
	}
}
