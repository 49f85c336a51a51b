package mpecsgostats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// HTTP: the one client of a run (targets, the ECS agent, the task metadata
// endpoint) and the one way it asks.

// newHTTPClient returns the client used for every HTTP call: no proxy, no
// redirects, no gzip (promhttp would compress its answers), and dial and
// header timeouts as a second bound behind the request context. Up to
// maxIdle of its connections are kept alive (the scrapes in flight at once,
// --concurrency), though each endpoint is asked once a run (twice when
// --format auto probes it): a connection left open is closed by the kernel
// when the process exits, in a worker of its own, where closing each one in
// the run cost the run a close call and the TCP exchange behind it, about a
// tenth of a run's CPU at 30 targets (docs/performance.md). Beyond maxIdle,
// a connection is closed when its answer is read, so that a run over
// thousands of targets does not hold their buffers to the end.
func newHTTPClient(timeout time.Duration, maxIdle int) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			MaxIdleConns:           maxIdle,
			MaxIdleConnsPerHost:    maxIdle,
			DisableCompression:     true, // loopback and task addresses: gzip would cost both ends CPU for nothing
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

// httpDoer is the one call get makes.
type httpDoer interface {
	Do(req *http.Request) (*http.Response, error)
}

// answer is a 200 answer's body and content type.
type answer struct {
	body        []byte
	contentType string
}

// get GETs url, asking for accept ("" for anything). Anything but a 200 with
// a body of at most maxBytes is an error, which does not name the URL (the
// caller does).
func get(ctx context.Context, hc httpDoer, url, accept string, maxBytes int) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("User-Agent", pluginName)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answer{}, statusError{resp.Status, resp.Header.Get("Location")}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(maxBytes)+1))
	if err != nil {
		return answer{}, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxBytes {
		return answer{}, fmt.Errorf("response body exceeds %d bytes", maxBytes)
	}
	return answer{body: body, contentType: resp.Header.Get("Content-Type")}, nil
}

// statusError is an answer other than 200 OK.
type statusError struct{ status, location string }

func (e statusError) Error() string {
	if e.location != "" {
		return fmt.Sprintf("unexpected status %s (redirect to %s not followed)", e.status, e.location)
	}
	return "unexpected status " + e.status
}

// isHTTPStatus tells an error of a server that answered.
func isHTTPStatus(err error) bool {
	var se statusError
	return errors.As(err, &se)
}

// maxECSBodyBytes bounds an answer of the task metadata endpoint or the ECS
// agent (a task's metadata is a few KiB; the agent's task list about 1 KiB a
// task).
const maxECSBodyBytes = 8 << 20

// getJSON GETs url and decodes its answer, one JSON value, into v.
func getJSON(ctx context.Context, hc httpDoer, url string, v any) error {
	a, err := get(ctx, hc, url, "application/json", maxECSBodyBytes)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		return fmt.Errorf("invalid answer: %w", err)
	}
	return nil
}

// httpCause is the cause of a failed get in a few words, and whether it
// is a connection that was refused.
func httpCause(err error, timeout time.Duration) (cause string, refused bool) {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("no answer within %s", timeout), false
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection closed before an answer", false
	}
	return oneLine(err.Error()), false
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
