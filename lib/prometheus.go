package mpecsgostats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// A Go service instrumented with github.com/prometheus/client_golang
// (/metrics, --format prometheus): its default registry carries the Go
// runtime collector, whose go_* series are read here under the handler's
// metric keys. client_golang has no cgo call count, and has had no pointer
// lookups since 1.20 (go_memstats_lookups_total before), so a target read
// this way has no runtime.cgo_call_num; gc_per_second and
// gc_pause_per_second are computed between two runs from the hidden
// counters, as for expvar. The text format (version 0.0.4) is asked for;
// OpenMetrics text, which a handler may send anyway, is read too.

type prometheusFormat struct{}

func (prometheusFormat) name() string        { return "prometheus" }
func (prometheusFormat) title() string       { return "Prometheus text" }
func (prometheusFormat) defaultPath() string { return "/metrics" }
func (prometheusFormat) maxBodyBytes() int   { return maxPrometheusBodyBytes }

// mediaRange: the text format 0.0.4, which every client_golang version
// serves. promhttp negotiates: asked for nothing in particular it answers
// text, but a handler with EnableOpenMetrics answers OpenMetrics to a
// request that prefers it, and any handler answers protobuf to one that
// asks for it.
func (prometheusFormat) mediaRange() string { return "text/plain;version=0.0.4" }

func (prometheusFormat) parse(body []byte) (values, error) { return parsePrometheus(body) }

// derive: the gc rates, from the go_gc_duration_seconds summary of two
// answers.
func (prometheusFormat) derive(cur, prev values, seconds float64) values {
	return gcRates(cur, prev, seconds)
}

// recognise: text in the Prometheus text format (or OpenMetrics) with at
// least one go_* sample: by its Content-Type, or when it has none the
// parser knows, by its first line. It reads the lines up to the first go_*
// sample.
func (prometheusFormat) recognise(contentType string, body []byte) bool {
	if c := firstNonSpace(body); c == 0 || c == '{' && json.Valid(body) {
		return false
	}
	return looksLikePrometheus(contentType, body) && hasGoSample(body)
}

// maxPrometheusBodyBytes bounds a /metrics answer. client_golang's default
// registry alone is about 9 KiB, but the answer also carries every series of
// the service's own (one line each, a histogram a line per bucket): a
// service with 10,000 series answers about 1 MiB, and large ones several.
// 4 MiB lets those through while still bounding what a run holds in bodies
// at this times --concurrency; the go_* series of a larger answer are not
// worth reading it.
const maxPrometheusBodyBytes = 4 << 20

var (
	// errNoGoSeries: text without one go_* series of the runtime collector.
	errNoGoSeries = errors.New("no go_* series: not a Go service's client_golang /metrics")
	// errBinary: an answer that fails as text and is not text.
	errBinary = errors.New("invalid Prometheus text: binary, not text (protobuf? gzip?)")
)

// prometheusSeries maps each metric read from a gauge or a counter to the
// client_golang series of the same runtime.MemStats field. Counters are
// sent as they are: rates are computed elsewhere. The gc metrics come from
// the go_gc_duration_seconds summary (see gcValues).
var prometheusSeries = []struct {
	key  metric
	name string
}{
	{goroutineNum, "go_goroutines"},
	{memoryAlloc, "go_memstats_alloc_bytes"},
	{memorySys, "go_memstats_sys_bytes"},
	{memoryStack, "go_memstats_stack_inuse_bytes"},
	{memoryLookups, "go_memstats_lookups_total"},
	{memoryMallocs, "go_memstats_mallocs_total"},
	{memoryFrees, "go_memstats_frees_total"},
	{heapSys, "go_memstats_heap_sys_bytes"},
	{heapIdle, "go_memstats_heap_idle_bytes"},
	{heapInuse, "go_memstats_heap_inuse_bytes"},
	{heapReleased, "go_memstats_heap_released_bytes"},
	{heapObjects, "go_memstats_heap_objects"},
	{memoryTotalAlloc, "go_memstats_alloc_bytes_total"},
	// hidden: for labeled outputs only
	{hiddenGCGoal, "go_memstats_next_gc_bytes"},
	{hiddenMaxProcs, "go_sched_gomaxprocs_threads"},
	{hiddenHeapAllocs, "go_gc_heap_allocs_objects_total"},
}

// gcSeries is the summary of stop-the-world pauses: its count is the
// number of collections, its sum their pauses in seconds.
const gcSeries = "go_gc_duration_seconds"

// parsePrometheus reads one Prometheus text answer into values and the
// hidden gc counters. Only the go_* lines go to the parser (see goLines),
// so the service's own series, however many, cost a scan of their lines
// and are never returned. A series the answer lacks is left out, as is one
// with more than one sample (labels telling several apart) or a value that
// is not finite. OpenMetrics text (it ends in "# EOF") is read by its
// samples alone: its # TYPE lines name a counter's family without _total,
// which the text format's parser would take for a second family. Text the
// parser rejects, or text without go_* series, is an error.
func parsePrometheus(body []byte) (values, error) {
	if c := firstNonSpace(body); (c == '{' || c == '[') && json.Valid(body) {
		return nil, errors.New("invalid Prometheus text: a JSON document")
	}
	text, lines := goLines(body, isOpenMetrics(body))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		if isBinary(body) {
			return nil, errBinary
		}
		return nil, prometheusError(err, lines)
	}
	v := make(values, len(prometheusSeries)+3)
	for _, s := range prometheusSeries {
		if n, ok := sampleValue(families[s.name]); ok {
			v[s.key] = n
		}
	}
	if num, pause, ok := gcValues(families); ok {
		v[gcNum] = num
		v[hiddenNumGC] = num
		v[hiddenPauseTotal] = pause
	}
	if len(v) == 0 {
		if isBinary(body) {
			return nil, errBinary
		}
		if err := checkFirstLine(body); err != nil {
			return nil, err
		}
		return nil, errNoGoSeries
	}
	return v, nil
}

// goLines is body with only the lines the parser needs: # HELP and # TYPE
// of go_* families (none for OpenMetrics: samples alone, read untyped) and
// go_* samples; comments, blank lines and every other series are dropped.
// A last line without its newline gets one. lines[i] is the line in body of
// the text's line i+1.
func goLines(body []byte, samplesOnly bool) (text []byte, lines []int) {
	var buf bytes.Buffer
	for n, rest := 1, body; len(rest) > 0; n++ {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if !isGoLine(line) || samplesOnly && firstNonBlank(line) == '#' {
			continue
		}
		buf.Write(line)
		if line[len(line)-1] != '\n' {
			buf.WriteByte('\n')
		}
		lines = append(lines, n)
	}
	return buf.Bytes(), lines
}

// isGoLine tells whether one line of the text format is a sample of a go_*
// series, or its family's # HELP or # TYPE. A sample's name comes first,
// or first quoted in the braces (names beyond the legacy characters).
func isGoLine(line []byte) bool {
	line = bytes.TrimLeft(line, " \t")
	if len(line) > 0 && line[0] == '#' {
		line = bytes.TrimLeft(line[1:], " \t")
		if !bytes.HasPrefix(line, []byte("HELP")) && !bytes.HasPrefix(line, []byte("TYPE")) {
			return false
		}
		line = bytes.TrimLeft(line[4:], " \t")
		line = bytes.TrimPrefix(line, []byte(`"`))
		return bytes.HasPrefix(line, []byte("go_"))
	}
	return bytes.HasPrefix(line, []byte("go_")) || bytes.HasPrefix(line, []byte(`{"go_`))
}

// prometheusError is a parser error on text made by goLines, with the
// line number of body.
func prometheusError(err error, lines []int) error {
	var pe expfmt.ParseError
	if errors.As(err, &pe) && len(lines) > 0 {
		line := lines[len(lines)-1]
		if pe.Line >= 1 && pe.Line <= len(lines) {
			line = lines[pe.Line-1]
		}
		return fmt.Errorf("invalid Prometheus text: line %d: %s", line, truncate(pe.Msg, 120))
	}
	return fmt.Errorf("invalid Prometheus text: %w", err)
}

// checkFirstLine is an error when the first line of body that is not
// blank is not one of the text format, as the parser reads it: body is
// some other answer (an HTML page, a protobuf message) rather than text
// without go_* series.
func checkFirstLine(body []byte) error {
	rest := body
	for n := 1; len(rest) > 0; n++ {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if len(bytes.Trim(line, " \t\n")) == 0 {
			continue
		}
		if line[len(line)-1] != '\n' {
			line = append(line[:len(line):len(line)], '\n')
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		if _, err := parser.TextToMetricFamilies(bytes.NewReader(line)); err != nil {
			return prometheusError(err, []int{n})
		}
		return nil
	}
	return nil
}

// sampleValue is the value of a gauge, counter or untyped family of one
// sample, when it is finite.
func sampleValue(mf *dto.MetricFamily) (float64, bool) {
	if len(mf.GetMetric()) != 1 {
		return 0, false
	}
	m := mf.GetMetric()[0]
	var v float64
	switch {
	case m.Gauge != nil:
		v = m.Gauge.GetValue()
	case m.Counter != nil:
		v = m.Counter.GetValue()
	case m.Untyped != nil:
		v = m.Untyped.GetValue()
	default:
		return 0, false
	}
	return v, !math.IsNaN(v) && !math.IsInf(v, 0)
}

// gcValues are the number of collections and their total pause in
// nanoseconds, from the go_gc_duration_seconds summary (a histogram from
// other instrumentation, or its _count and _sum as untyped series where
// the answer has no # TYPE line).
func gcValues(families map[string]*dto.MetricFamily) (num, pauseNs float64, ok bool) {
	if mf := families[gcSeries]; len(mf.GetMetric()) == 1 {
		m := mf.GetMetric()[0]
		switch {
		case m.Summary != nil:
			num, ok = float64(m.Summary.GetSampleCount()), true
			pauseNs = m.Summary.GetSampleSum()
		case m.Histogram != nil:
			num, ok = float64(m.Histogram.GetSampleCount()), true
			if m.Histogram.SampleCountFloat != nil {
				num = m.Histogram.GetSampleCountFloat()
			}
			pauseNs = m.Histogram.GetSampleSum()
		}
	} else if c, okCount := sampleValue(families[gcSeries+"_count"]); okCount {
		if s, okSum := sampleValue(families[gcSeries+"_sum"]); okSum {
			num, pauseNs, ok = c, s, true
		}
	}
	pauseNs = math.Round(pauseNs * 1e9)
	if !ok || math.IsNaN(num) || math.IsInf(num, 0) || math.IsNaN(pauseNs) || math.IsInf(pauseNs, 0) {
		return 0, 0, false
	}
	return num, pauseNs, true
}

// isBinary tells whether the first 512 bytes of body have a control
// character that text has not: a protobuf answer (which promhttp sends to
// whoever asks for it) or a compressed one. It only explains a failure:
// a label value may hold such a character.
func isBinary(body []byte) bool {
	for _, c := range body[:min(len(body), 512)] {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return true
		}
	}
	return false
}

// isOpenMetrics tells whether body ends as OpenMetrics text does, in a
// "# EOF" line. The text format has no such end.
func isOpenMetrics(body []byte) bool {
	body = bytes.TrimRight(body, " \t\r\n")
	i := bytes.LastIndexByte(body, '\n')
	return bytes.Equal(bytes.TrimSpace(body[i+1:]), []byte("# EOF"))
}

// looksLikePrometheus tells whether an answer is text in the Prometheus
// text format (or OpenMetrics, which shares its lines): by its
// Content-Type, or when it has none the parser knows, by its first line.
// A protobuf answer is not.
func looksLikePrometheus(contentType string, body []byte) bool {
	mediaType, _, _ := mime.ParseMediaType(contentType)
	switch mediaType {
	case "text/plain", "application/openmetrics-text":
		return true
	case "application/vnd.google.protobuf":
		return false
	}
	return checkFirstLine(body) == nil
}

// hasGoSample tells whether a line of body is a go_* sample.
func hasGoSample(body []byte) bool {
	for rest := body; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if isGoLine(line) && firstNonBlank(line) != '#' {
			return true
		}
	}
	return false
}

// firstNonBlank is the first byte of line that is not a blank or a tab, or 0.
func firstNonBlank(line []byte) byte {
	if line = bytes.TrimLeft(line, " \t"); len(line) > 0 {
		return line[0]
	}
	return 0
}
