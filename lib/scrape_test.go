package mpecsgostats

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
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

func TestScrapeFailures(t *testing.T) {
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
	mux.HandleFunc("/eof", func(w http.ResponseWriter, r *http.Request) { // as docker-proxy with nothing behind it
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
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
		{srv.URL + "/hang", "no answer within 200ms"},
		{srv.URL + "/eof", "the connection closed before an answer: usually nothing listens on the container port behind the published port (the service is still starting, or listens on another port: see --container-port)"},
		{refused, "connect: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			r := scrapeURL(t, gostatsFormat{}, tt.url, 200*time.Millisecond)
			if r.cause == nil || !strings.HasSuffix(r.cause.Error(), tt.wantErr) {
				t.Errorf("err = %v, want ...%s", r.cause, tt.wantErr)
			}
		})
	}
}

func TestScrapeBoundedByDeadline(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	good := httptest.NewServer(http.HandlerFunc(stats_api.Handler))
	defer good.Close()
	target := func(srv *httptest.Server, name string) keyed {
		addr := srv.Listener.Addr().(*net.TCPAddr)
		return keyed{target: target{ContainerID: name + "0123456789abcdef", ContainerName: name,
			Host: addr.IP.String(), Port: uint16(addr.Port), HostPort: uint16(addr.Port)}, key: name}
	}
	run := func(concurrency int, targets ...keyed) []result {
		s := scraper{hc: newHTTPClient(time.Second, 128), formats: testFormats, scheme: "http", path: "/stats", format: gostatsFormat{},
			timeout: time.Second, concurrency: concurrency, now: time.Now(), clock: time.Now}
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		return s.scrape(ctx, targets)
	}
	hung, ok := target(hang, "hung"), target(good, "good")
	noAnswer := "no answer within 1s"
	notScraped := "not scraped: 2 others still in flight at the deadline (see --concurrency)"

	// Enough slots: hung targets cost only themselves.
	results := run(8, hung, hung, ok, hung)
	for i, r := range results {
		if i == 2 {
			if r.cause != nil || r.values[memorySys] <= 0 {
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

// TestScrapeErrorURL: a target the deadline left no turn names the URL it
// would have been asked at, as one that was asked does.
func TestScrapeErrorURL(t *testing.T) {
	notAsked := errors.New("not scraped: 2 others still in flight at the deadline (see --concurrency)")
	tests := []struct {
		name   string
		s      scraper
		target target
		how    how
		want   string
	}{
		{"asked", scraper{format: gostatsFormat{}}, target{}, how{path: "/probed"}, "http://127.0.0.1:8080/probed"},
		{"the default format's path", scraper{format: gostatsFormat{}}, target{}, how{}, "http://127.0.0.1:8080/stats"},
		{"the flag's path", scraper{format: gostatsFormat{}, path: "/custom"}, target{}, how{}, "http://127.0.0.1:8080/custom"},
		{"the label's path", scraper{format: gostatsFormat{}, path: "/custom"}, target{Path: "/own"}, how{}, "http://127.0.0.1:8080/own"},
		{"the label's format", scraper{format: gostatsFormat{}}, target{format: prometheusFormat{}}, how{}, "http://127.0.0.1:8080/metrics"},
		{"--format auto, not probed", scraper{}, target{}, how{}, "http://127.0.0.1:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.scheme = "http"
			tt.target.ContainerID, tt.target.ContainerName, tt.target.Host, tt.target.Port = "0123456789abcdef", "web", "127.0.0.1", 8080
			err := tt.s.scrapeError(result{target: tt.target, how: tt.how, cause: notAsked})
			want := "scrape " + tt.want + " (container web 0123456789ab): " + notAsked.Error()
			if err.Error() != want {
				t.Errorf("%v\nwant %s", err, want)
			}
		})
	}
}

// scrapeURL scrapes the endpoint at rawURL as a run does, read as f, within
// timeout.
func scrapeURL(t *testing.T, f format, rawURL string, timeout time.Duration) result {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	s := scraper{hc: newHTTPClient(timeout, 128), formats: testFormats, scheme: u.Scheme, path: u.RequestURI(), format: f, timeout: timeout,
		concurrency: 1, now: time.Now(), clock: time.Now}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.scrape(ctx, []keyed{{target: target{Host: u.Hostname(), Port: uint16(port)}, key: "k"}})[0]
}
