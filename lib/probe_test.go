package mpecsgostats

import (
	"expvar"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// counting serves h and counts the requests it gets, by path.
type counting struct {
	h  http.Handler
	mu sync.Mutex
	n  map[string]int
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[r.URL.Path]++
	c.mu.Unlock()
	c.h.ServeHTTP(w, r)
}

func (c *counting) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = nil
	return n
}

// TestRunAuto: --format auto reads a fleet of the three kinds and a
// service that is no Go runtime, a run a minute on the runs' clock. The
// first run probes; from the second on every Go target costs exactly one
// request, and the other none; each prints exactly the values its format
// has.
func TestRunAuto(t *testing.T) {
	handler, prom, vars, nginx := http.NewServeMux(), http.NewServeMux(), http.NewServeMux(), http.NewServeMux()
	handler.Handle("/stats", realHandler)
	prom.Handle("/metrics", promhttp.Handler())
	vars.Handle("/debug/vars", expvar.Handler())
	nginx.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stats" {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html><body>It works!</body></html>\n"))
			return
		}
		http.NotFound(w, r)
	})
	services := []*counting{{h: handler}, {h: prom}, {h: vars}, {h: nginx}}
	ports := fleet(t, len(services), func(i int) http.Handler { return services[i] })
	host := fleetDocker(t, ports...)
	state := "--tempfile=" + t.TempDir() + "/state"
	requests := func() []map[string]int {
		var n []map[string]int
		for _, s := range services {
			n = append(n, s.take())
		}
		return n
	}
	formatOf := func(keys []string) map[string]int {
		n := map[string]int{}
		for _, k := range keys {
			n[strings.SplitN(k, ".", 3)[1]]++
		}
		return n
	}

	// the values of each service: the first run has no rates yet (the
	// gauges); the next have rates of the counters, and the gc rates expvar
	// and client_golang's series are derived into. client_golang (1.20 and
	// later) has no cgo call or pointer lookup count, expvar no goroutine or
	// cgo call count.
	gauges := []int{11, 9, 8}
	all := []int{17, 15, 15}
	checkKeys := func(run int, keys []string, want []int) {
		t.Helper()
		n := formatOf(keys)
		for i, p := range ports[:3] {
			if n[fmt.Sprint(p)] != want[i] {
				t.Errorf("run %d: %d values for port %d, want %d: %q", run, n[fmt.Sprint(p)], p, want[i], keys)
			}
		}
		if n[fmt.Sprint(ports[3])] != 0 {
			t.Errorf("run %d: values of the non-Go service: %q", run, keys)
		}
	}
	clock := newTestClock(time.Now().Truncate(time.Second)) // the state keeps whole seconds
	first := runInAt(t, clock.now, host, "--format", "auto", state)
	if first.code != 0 || len(first.stderr) != 0 {
		t.Fatalf("first run: exit %d, stderr %q", first.code, first.stderr)
	}
	checkKeys(1, first.keys, gauges)
	want := []map[string]int{
		{"/stats": 1},
		{"/stats": 1, "/metrics": 1},
		{"/stats": 1, "/metrics": 1, "/debug/vars": 1},
		{"/stats": 1, "/metrics": 1, "/debug/vars": 1},
	}
	if got := requests(); !slices.EqualFunc(got, want, mapsEqual) {
		t.Errorf("first run's requests %v\nwant %v", got, want)
	}

	for run := 2; run <= 3; run++ {
		clock.advance(time.Minute)
		r := runInAt(t, clock.now, host, "--format", "auto", state)
		if r.code != 0 || len(r.stderr) != 0 {
			t.Fatalf("run %d: exit %d, stderr %q", run, r.code, r.stderr)
		}
		want := []map[string]int{{"/stats": 1}, {"/metrics": 1}, {"/debug/vars": 1}, nil}
		if got := requests(); !slices.EqualFunc(got, want, mapsEqual) {
			t.Errorf("run %d's requests %v\nwant %v", run, got, want)
		}
		checkKeys(run, r.keys, all)
	}

	list := runInAt(t, clock.now, host, "--format", "auto", state, "--list")
	wantList := []string{ // by service
		fmt.Sprintf("127.0.0.1:%d .* gostats \\(probe\\) at /stats \\(probe\\)$", ports[0]),
		fmt.Sprintf("127.0.0.1:%d .* prometheus \\(probe\\) at /metrics \\(probe\\)$", ports[1]),
		fmt.Sprintf("127.0.0.1:%d .* expvar \\(probe\\) at /debug/vars \\(probe\\)$", ports[2]),
		"passed over: port 8080: not a Go runtime's stats \\(probed 2m0s ago: /stats: no known format, /metrics: unexpected status 404 Not Found, /debug/vars: unexpected status 404 Not Found\\)$",
	}
	if len(list.keys) != len(wantList) {
		t.Fatalf("--list:\n%s", strings.Join(list.keys, "\n"))
	}
	for _, w := range wantList {
		if !slices.ContainsFunc(list.keys, regexp.MustCompile(w).MatchString) {
			t.Errorf("--list:\n%s\nwant a line matching %s", strings.Join(list.keys, "\n"), w)
		}
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestAutoFailingTarget: an identified target that fails is a failed target
// at its remembered path (one request a run, a warning); after
// reprobeAfter of failing it is probed afresh.
func TestAutoFailingTarget(t *testing.T) {
	down := false
	svc := &counting{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down || r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		promhttp.Handler().ServeHTTP(w, r)
	})}
	ports := fleet(t, 1, func(int) http.Handler { return svc })
	host := fleetDocker(t, ports...)
	dir := t.TempDir()
	state := "--tempfile=" + dir + "/state"
	if r := runIn(t, host, "--format", "auto", state); r.code != 0 || len(r.stderr) != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	svc.take()
	down = true
	r := runIn(t, host, "--format", "auto", state)
	want := fmt.Sprintf("warning: scrape http://127.0.0.1:%d/metrics (container ecs-web-3-web-0000 000000000001): unexpected status 404 Not Found", ports[0])
	if !slices.Equal(r.stderr, []string{want}) {
		t.Errorf("stderr %q\nwant %q", r.stderr, want)
	}
	if got := svc.take(); !mapsEqual(got, map[string]int{"/metrics": 1}) {
		t.Errorf("requests %v, want one at the remembered path", got)
	}

	// Failing for longer than reprobeAfter: probed afresh; answering no probe
	// now, it is no target.
	st, err := loadState(dir + "/state")
	if err != nil {
		t.Fatal(err)
	}
	for id, l := range st.Learnt {
		l.FailingSince = time.Now().Add(-reprobeAfter - time.Second).Unix()
		st.Learnt[id] = l
	}
	if err := saveState(dir+"/state", st); err != nil {
		t.Fatal(err)
	}
	r = runIn(t, host, "--format", "auto", state)
	if r.code != 0 || len(r.stderr) != 0 {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if got := svc.take(); !mapsEqual(got, map[string]int{"/stats": 1, "/metrics": 1, "/debug/vars": 1}) {
		t.Errorf("requests %v, want the three probes", got)
	}
}

// TestAutoUnknownLearntFormat: a state file naming a format this version
// does not know (an older or newer plugin's) costs a probe, not the run.
func TestAutoUnknownLearntFormat(t *testing.T) {
	port := fleet(t, 1, func(int) http.Handler { return realHandler })[0]
	tg := target{ContainerID: "c0ffee", PrivatePort: 8080, Host: "127.0.0.1", Port: port}
	s := scraper{hc: newHTTPClient(time.Second, 128), formats: testFormats, scheme: "http", timeout: time.Second, concurrency: 1,
		now: time.Now(), clock: time.Now, learnt: map[string]learnt{tg.identity(): {Format: "json", Path: "/stats"}}}
	r := s.target(t.Context(), tg)
	if r.cause != nil || r.how.format == nil || r.how.format.name() != "gostats" || r.how.formatFrom != "probe" ||
		r.learnt == nil || r.learnt.Format != "gostats" {
		t.Errorf("result %+v, want the handler found by probing", r)
	}
}

// TestAutoUnparseable: under --format auto, an answer recognised as a
// format that its parser rejects ends the probe: the target failed, with
// one warning naming the path and the parser's words; it is no "not a Go
// runtime" (no passing over), and nothing is learnt, so the next run
// probes again.
func TestAutoUnparseable(t *testing.T) {
	tests := []struct {
		name     string
		serve    map[string]string // path -> Content-Type and body, "type\nbody"
		path     string            // of the warning
		cause    string
		requests map[string]int // a run's
	}{
		{"handler JSON with a field that is no number", map[string]string{"/stats": "application/json\n" + `{"goroutine_num": "x", "memory_sys": 1}`},
			"/stats", `invalid stats JSON: field goroutine_num: "x" is not a number`, map[string]int{"/stats": 1}},
		{"Prometheus text with a go_ value that is no number", map[string]string{"/metrics": "text/plain; version=0.0.4\ngo_goroutines seven\n"},
			"/metrics", `invalid Prometheus text: line 1: expected float as value, got "seven"`, map[string]int{"/stats": 1, "/metrics": 1}},
		{"expvar with a memstats field that is no number", map[string]string{"/debug/vars": "application/json\n" + `{"cmdline": [], "memstats": {"Sys": "12"}}`},
			"/debug/vars", `invalid expvar JSON: memstats.Sys: "12" is not a number`, map[string]int{"/stats": 1, "/metrics": 1, "/debug/vars": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &counting{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				answer, ok := tt.serve[r.URL.Path]
				if !ok {
					http.NotFound(w, r)
					return
				}
				contentType, body, _ := strings.Cut(answer, "\n")
				w.Header().Set("Content-Type", contentType)
				w.Write([]byte(body))
			})}
			ports := fleet(t, 1, func(int) http.Handler { return svc })
			host := fleetDocker(t, ports...)
			state := "--tempfile=" + t.TempDir() + "/state"
			want := fmt.Sprintf("warning: scrape http://127.0.0.1:%d%s (container ecs-web-3-web-0000 000000000001): %s", ports[0], tt.path, tt.cause)
			for run := 1; run <= 2; run++ {
				r := runIn(t, host, "--format", "auto", state)
				if r.code != 0 || !slices.Equal(r.stderr, []string{want}) || len(r.keys) != 0 {
					t.Errorf("run %d: exit %d, keys %q, stderr %q\nwant exit 0, no keys, %q", run, r.code, r.keys, r.stderr, want)
				}
				if h := healthValues(t, r.stdout); h["targets.found"] != 1 || h["targets.ok"] != 0 || h["targets.failed"] != 1 {
					t.Errorf("run %d: health %v, want 1 found, 0 ok, 1 failed", run, h)
				}
				if got := svc.take(); !mapsEqual(got, tt.requests) {
					t.Errorf("run %d: requests %v, want %v (the probe stops at the answer, and probes again next run)", run, got, tt.requests)
				}
			}
			list := runIn(t, host, "--format", "auto", state, "--list")
			svc.take()
			if len(list.keys) != 1 || !strings.Contains(list.keys[0], "error: "+tt.cause) || !strings.HasSuffix(list.keys[0], " (probe) at "+tt.path+" (probe)") {
				t.Errorf("--list %q, want the target failed with %q, read at %s as probed", list.keys, tt.cause, tt.path)
			}
		})
	}
}
