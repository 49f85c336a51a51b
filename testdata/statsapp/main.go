// Command statsapp is the Go service the integration tests run as ECS-like
// tasks. It serves the real github.com/fukata/golang-stats-api-handler on
// :8080/stats. STATSAPP_MODE makes it misbehave the way a broken task does:
//
//	ok        the real handler (default)
//	badjson   200 with a body that is not JSON
//	hang      accepts the request and never answers
//	error     500 Internal Server Error
//	redirect  302 to /elsewhere
//	big       200 with an endless body
//	expvar    no /stats: only Go's own expvar at /debug/vars (cmdline, memstats)
//	expvar-app  expvar as a service using it serves it: application
//	          variables too (a counter of requests to /, a published func),
//	          and GET /gc runs a garbage collection
//	prometheus  no /stats: only github.com/prometheus/client_golang's
//	          promhttp.Handler() at /metrics (the default registry: the Go
//	          runtime and process collectors)
//	prometheus-app  prometheus as a service using it serves it: its own
//	          series too (statsapp_requests_total by method and code, the
//	          statsapp_request_duration_seconds histogram), and GET /gc runs
//	          a garbage collection
//
// STATSAPP_ADDR is the service's address (default :8080). With
// STATSAPP_STATS_ADDR set (e.g. :9090), the stats (what the mode serves:
// /stats, /debug/vars or /metrics, and /gc) are served there only, as a
// service with a separate admin port does, and STATSAPP_ADDR serves only /.
//
// For the container metrics: STATSAPP_BURN=1 spins one goroutine in a busy
// loop (under a CPU quota it uses the quota), STATSAPP_HOLD_MIB=N touches N
// MiB of memory and keeps it, and GET /statsapp/bytes?n=N answers N bytes.
//
// Every listener also answers GET /statsapp/requests, uncounted, with the
// requests it has served so far by path, as a JSON object ({"/stats": 2}),
// so a test can count what a scraper asked of it; the count is taken
// before the request is answered.
package main

import (
	"encoding/json"
	"expvar"
	"log"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	stats_api "github.com/fukata/golang-stats-api-handler"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	addr := os.Getenv("STATSAPP_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	if os.Getenv("STATSAPP_PRETTY") != "" {
		stats_api.PrettyPrintEnabled()
	}
	if os.Getenv("STATSAPP_NEWLINE") != "" {
		stats_api.NewLineTermEnabled()
	}
	mode := os.Getenv("STATSAPP_MODE")
	held := hold(os.Getenv("STATSAPP_HOLD_MIB"), os.Getenv("STATSAPP_BURN") != "")
	defer runtime.KeepAlive(held)
	mux := http.NewServeMux()
	mux.HandleFunc("/statsapp/bytes", sendBytes)
	stats := mux // where the stats are served
	statsAddr := os.Getenv("STATSAPP_STATS_ADDR")
	if statsAddr != "" {
		stats = http.NewServeMux()
	}
	requests := func() {}
	switch mode {
	case "expvar":
		stats.Handle("/debug/vars", expvar.Handler())
	case "expvar-app":
		stats.Handle("/debug/vars", expvar.Handler())
		n := expvar.NewInt("requests")
		requests = func() { n.Add(1) }
		expvar.Publish("build", expvar.Func(func() any {
			return map[string]any{"version": "1.4.2", "features": []string{"a", "b"}, "ready": true}
		}))
		stats.HandleFunc("/gc", func(w http.ResponseWriter, r *http.Request) {
			runtime.GC()
			w.Write([]byte("gc\n"))
		})
	case "prometheus":
		stats.Handle("/metrics", promhttp.Handler())
	case "prometheus-app":
		stats.Handle("/metrics", promhttp.Handler())
		requests = prometheusApp(stats)
	default:
		stats.HandleFunc("/stats", handler(mode))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		requests()
		w.Write([]byte("statsapp\n"))
	})
	if statsAddr != "" {
		go func() { log.Fatal(http.ListenAndServe(statsAddr, counted(stats))) }()
	}
	log.Fatal(http.ListenAndServe(addr, counted(mux)))
}

// hold touches mib MiB of memory (every page written, so it is resident)
// and returns it to keep; with burn it also spins a goroutine for ever.
func hold(mib string, burn bool) []byte {
	var held []byte
	if n, err := strconv.Atoi(mib); err == nil && n > 0 {
		held = make([]byte, n<<20)
		for i := 0; i < len(held); i += 4096 {
			held[i] = 1
		}
	}
	if burn {
		go func() {
			x := uint64(1)
			for {
				x = x*6364136223846793005 + 1442695040888963407
				if x == 0 {
					println(x)
				}
			}
		}()
	}
	return held
}

// sendBytes answers n bytes (the query's n).
func sendBytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 0 {
		http.Error(w, "n: want a number of bytes", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(n))
	chunk := make([]byte, 64<<10)
	for n > 0 {
		k := min(n, len(chunk))
		if _, err := w.Write(chunk[:k]); err != nil {
			return
		}
		n -= k
	}
}

// counted serves h and counts its requests by path; GET /statsapp/requests
// answers the counts so far, as a JSON object, and is not counted.
func counted(h http.Handler) http.Handler {
	var mu sync.Mutex
	n := map[string]int{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/statsapp/requests" {
			mu.Lock()
			b, _ := json.Marshal(n)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return
		}
		mu.Lock()
		n[r.URL.Path]++
		mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// prometheusApp registers a service's own series in the default registry, as
// a service instrumented with client_golang does, and GET /gc; it returns
// what counts a request to /.
func prometheusApp(mux *http.ServeMux) func() {
	reqs := promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "statsapp_requests_total",
		Help: "Requests to /, by method and code.",
	}, []string{"method", "code"})
	dur := promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "statsapp_request_duration_seconds",
		Help:    "Time to answer a request to /.",
		Buckets: []float64{0.001, 0.01, 0.1, 1},
	})
	promauto.NewGauge(prometheus.GaugeOpts{
		Name:        "statsapp_build_info",
		Help:        "The build, as a constant 1 with labels.",
		ConstLabels: prometheus.Labels{"version": "1.4.2"},
	}).Set(1)
	// Counted ahead so a fresh process's capture has the series.
	reqs.WithLabelValues("GET", "200")
	reqs.WithLabelValues("POST", "405")
	mux.HandleFunc("/gc", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		w.Write([]byte("gc\n"))
	})
	return func() {
		start := time.Now()
		reqs.WithLabelValues("GET", "200").Inc()
		dur.Observe(time.Since(start).Seconds())
	}
}

func handler(mode string) http.HandlerFunc {
	switch mode {
	case "", "ok":
		return stats_api.Handler
	case "badjson":
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html><body>It works!</body></html>\n"))
		}
	case "hang":
		return func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}
	case "error":
		return func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	case "redirect":
		return func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}
	case "big":
		return func(w http.ResponseWriter, r *http.Request) {
			chunk := []byte("{\"pad\":\"" + strings.Repeat("x", 64<<10))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}
	default:
		log.Fatalf("unknown STATSAPP_MODE %q", mode)
		return nil
	}
}
