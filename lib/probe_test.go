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
// service that is no Go runtime. The first run probes; from the second on
// every Go target costs exactly one request, and the other none.
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

	first := runIn(t, host, "--format", "auto", state)
	if first.code != 0 || len(first.stderr) != 0 {
		t.Fatalf("first run: exit %d, stderr %q", first.code, first.stderr)
	}
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
		r := runIn(t, host, "--format", "auto", state)
		if r.code != 0 || len(r.stderr) != 0 {
			t.Fatalf("run %d: exit %d, stderr %q", run, r.code, r.stderr)
		}
		want := []map[string]int{{"/stats": 1}, {"/metrics": 1}, {"/debug/vars": 1}, nil}
		if got := requests(); !slices.EqualFunc(got, want, mapsEqual) {
			t.Errorf("run %d's requests %v\nwant %v", run, got, want)
		}
		keys := formatOf(r.keys)
		for _, p := range ports[:3] {
			if keys[fmt.Sprint(p)] == 0 || keys[fmt.Sprint(p)] < 8 {
				t.Errorf("run %d: %d values for port %d: %q", run, keys[fmt.Sprint(p)], p, r.keys)
			}
		}
		if keys[fmt.Sprint(ports[3])] != 0 {
			t.Errorf("run %d: values of the non-Go service: %q", run, r.keys)
		}
	}

	list := runIn(t, host, "--format", "auto", state, "--list")
	wantList := []string{ // by service
		fmt.Sprintf("127.0.0.1:%d .* gostats \\(probe\\) at /stats \\(probe\\)$", ports[0]),
		fmt.Sprintf("127.0.0.1:%d .* prometheus \\(probe\\) at /metrics \\(probe\\)$", ports[1]),
		fmt.Sprintf("127.0.0.1:%d .* expvar \\(probe\\) at /debug/vars \\(probe\\)$", ports[2]),
		"passed over: port 8080: not a Go runtime's stats \\(probed [0-9]+s ago: /stats: no known format, /metrics: unexpected status 404 Not Found, /debug/vars: unexpected status 404 Not Found\\)$",
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
	s := scraper{hc: newHTTPClient(time.Second), scheme: "http", timeout: time.Second, concurrency: 1, now: time.Now(),
		learnt: map[string]learnt{tg.identity(): {Format: "json", Path: "/stats"}}}
	r := s.target(t.Context(), tg)
	if r.cause != nil || r.how.format == nil || r.how.format.name() != formatGostats || r.how.formatFrom != "probe" ||
		r.learnt == nil || r.learnt.Format != formatGostats {
		t.Errorf("result %+v, want the handler found by probing", r)
	}
}
