package mpecsgostats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// maxBodyBytes bounds a stats response: the real handler sends about 1 KiB,
// 5 KiB pretty-printed with a full gc_pause list; expvar's /debug/vars 4 to
// 10 KiB, plus the application's own variables. The bound times
// --concurrency is the most a run holds in bodies.
const maxBodyBytes = 256 << 10

// errNoStats is returned for JSON that has none of the handler's fields.
var errNoStats = errors.New("no golang-stats-api-handler fields in response")

// parseStats decodes one golang-stats-api-handler response into
// "<graph>.<metric>" values; each metric is the JSON field of its name.
// Fields missing (or null) in the response are left out; a response with
// none of them, with a field that is not a number, or that is not one JSON
// object is an error.
func parseStats(body []byte) (map[string]float64, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fmt.Errorf("invalid stats JSON: %w", err)
	}
	values := make(map[string]float64, len(metricDefs))
	for _, m := range metricDefs {
		raw, ok := fields[m.name]
		if !ok || string(raw) == "null" {
			continue
		}
		var v float64
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("invalid stats JSON: field %s: %s is not a number", m.name, truncate(string(raw), 20))
		}
		values[m.key()] = v
	}
	if len(values) == 0 {
		if _, ok := fields["memstats"]; ok {
			return nil, errExpvarNotGostats
		}
		return nil, errNoStats
	}
	return values, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// newHTTPClient returns the client used for every target: no proxy, no
// redirects, no keep-alive (each target is asked once a run), and dial and
// header timeouts as a second bound behind the request context.
func newHTTPClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			DisableKeepAlives:      true,
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: timeout,
	}
}

// fetchStats GETs one golang-stats-api-handler endpoint and parses it.
func fetchStats(ctx context.Context, hc *http.Client, url string) (map[string]float64, error) {
	return fetch(ctx, hc, url, parseStats)
}

// fetch GETs one stats endpoint and parses the body with parse. Anything
// but a 200 with a stats object of at most maxBodyBytes is an error.
func fetch(ctx context.Context, hc *http.Client, url string, parse func([]byte) (map[string]float64, error)) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "mackerel-plugin-ecs-gostats")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if loc := resp.Header.Get("Location"); loc != "" {
			return nil, fmt.Errorf("unexpected status %s (redirect to %s not followed)", resp.Status, loc)
		}
		return nil, fmt.Errorf("unexpected status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxBodyBytes {
		return nil, fmt.Errorf("response body exceeds %d bytes", maxBodyBytes)
	}
	return parse(body)
}
