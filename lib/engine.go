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
	"strings"
	"sync"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"
)

// The Docker Engine API, as the Docker source asks it: four GETs over the
// daemon's unix socket (or TCP), answers decoded into the plugin's own
// narrow types with the Engine API's field names (internal/engineapi).
// Docker's Go client makes the same requests; it is not linked in because
// it brings OpenTelemetry's HTTP instrumentation and image reference
// parsing with it: 0.25 MB of every run's binary and 1.5 ms of its start,
// for calls that need neither.

// engine is a client of one daemon for one run, shared by every call the
// run makes of it. It asks at apiVersion; a daemon that refuses that
// version (Docker 29 serves 1.44 and later only) is asked for its own once
// (HEAD /_ping, as Docker's client negotiates), and the refused call is made
// again at it. It inspects a container at most once: the service identity
// and the container metrics both read the same answer.
type engine struct {
	hc   *http.Client
	base string // http://docker for a unix socket, http://host:port for TCP

	mu        sync.Mutex
	version   string                  // the API version of every path
	inspected map[string]*inspectOnce // by container id
}

// inspectOnce is the one inspect of a container: its answer, once done.
type inspectOnce struct {
	done chan struct{}
	c    engineapi.InspectResponse
	err  error
}

// newEngine is a client of the daemon at host (unix:///path or
// tcp://host:port), each call bounded by timeout. Its connections stay
// open until Close.
func newEngine(host string, timeout time.Duration) (*engine, error) {
	e := &engine{version: apiVersion, inspected: map[string]*inspectOnce{}}
	dialer := &net.Dialer{Timeout: timeout}
	var dial func(ctx context.Context, network, addr string) (net.Conn, error)
	switch {
	case strings.HasPrefix(host, "unix://"):
		path := strings.TrimPrefix(host, "unix://")
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) { return dialer.DialContext(ctx, "unix", path) }
		e.base = "http://docker"
	case strings.HasPrefix(host, "tcp://"):
		dial = dialer.DialContext
		e.base = "http://" + strings.TrimPrefix(host, "tcp://")
	default:
		return nil, fmt.Errorf("unable to parse docker host %q: want unix:// or tcp://", host)
	}
	e.hc = &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: dial, Proxy: nil, DisableCompression: true}}
	return e, nil
}

// Close ends the engine's connections.
func (e *engine) Close() error {
	e.hc.CloseIdleConnections()
	return nil
}

// connectionError is a daemon that could not be reached.
type connectionError struct{ err error }

func (c connectionError) Error() string {
	return "Cannot connect to the Docker daemon: " + c.err.Error()
}
func (c connectionError) Unwrap() error { return c.err }

// isConnectionFailed tells an error of a daemon that could not be reached.
func isConnectionFailed(err error) bool {
	var c connectionError
	return errors.As(err, &c)
}

// get GETs path (with query) of the API and returns the answer's body, to
// be closed. An answer other than 2xx is the daemon's error, as its
// {"message": ...} says.
func (e *engine) get(ctx context.Context, path string, query url.Values) (io.ReadCloser, error) {
	e.mu.Lock()
	version := e.version
	e.mu.Unlock()
	body, err := e.getAt(ctx, version, path, query)
	if err == nil || !strings.Contains(err.Error(), "client version "+version+" is too") {
		return body, err
	}
	if version, err = e.negotiate(ctx, version); err != nil {
		return nil, err
	}
	return e.getAt(ctx, version, path, query)
}

// getAt is get at API version.
func (e *engine) getAt(ctx context.Context, version, path string, query url.Values) (io.ReadCloser, error) {
	u := e.base + "/v" + version + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	resp, err := e.do(ctx, http.MethodGet, u)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, daemonError(resp)
	}
	return resp.Body, nil
}

func (e *engine) do(ctx context.Context, method, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", pluginName)
	resp, err := e.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, connectionError{err}
		}
		return nil, err
	}
	return resp, nil
}

// negotiate takes the daemon's API version once it refused the version
// refused (the Api-Version of its /_ping, asked as Docker's client asks it:
// HEAD), once: the calls refused at the same time wait and take the same.
func (e *engine) negotiate(ctx context.Context, refused string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.version != refused {
		return e.version, nil
	}
	resp, err := e.do(ctx, http.MethodHead, e.base+"/_ping")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if v := resp.Header.Get("Api-Version"); v != "" {
		e.version = v
	}
	return e.version, nil
}

// daemonError is the error of an answer other than 2xx.
func daemonError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct{ Message string }
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(body))
		if e.Message == "" {
			e.Message = resp.Status
		}
	}
	return errors.New("Error response from daemon: " + e.Message)
}

// getJSON GETs path and decodes its answer into v.
func (e *engine) getJSON(ctx context.Context, path string, query url.Values, v any) error {
	body, err := e.get(ctx, path, query)
	if err != nil {
		return err
	}
	defer body.Close()
	return json.NewDecoder(body).Decode(v)
}

// ContainerList is GET /containers/json with filters (name: values), in
// the form the Engine API reference gives: {"status":["running"]}.
func (e *engine) ContainerList(ctx context.Context, filters map[string][]string) ([]engineapi.Summary, error) {
	q := url.Values{}
	if len(filters) > 0 {
		f, _ := json.Marshal(filters) // strings only: it cannot fail
		q.Set("filters", string(f))
	}
	var list []engineapi.Summary
	return list, e.getJSON(ctx, "/containers/json", q, &list)
}

// Info is GET /info.
func (e *engine) Info(ctx context.Context) (engineapi.Info, error) {
	var info engineapi.Info
	return info, e.getJSON(ctx, "/info", nil, &info)
}

// ContainerInspect is GET /containers/{id}/json, asked once a container:
// a call while it is asked waits for the same answer.
func (e *engine) ContainerInspect(ctx context.Context, id string) (engineapi.InspectResponse, error) {
	e.mu.Lock()
	once, asked := e.inspected[id]
	if !asked {
		once = &inspectOnce{done: make(chan struct{})}
		e.inspected[id] = once
	}
	e.mu.Unlock()
	if !asked {
		once.err = e.getJSON(ctx, "/containers/"+url.PathEscape(id)+"/json", nil, &once.c)
		close(once.done)
	}
	select {
	case <-once.done:
		return once.c, once.err
	case <-ctx.Done():
		return engineapi.InspectResponse{}, ctx.Err()
	}
}

// ContainerStatsOneShot is GET /containers/{id}/stats, one sample, at once
// (one-shot: API 1.41 and later): the answer's body, to be closed.
func (e *engine) ContainerStatsOneShot(ctx context.Context, id string) (io.ReadCloser, error) {
	return e.get(ctx, "/containers/"+url.PathEscape(id)+"/stats", url.Values{"stream": {"false"}, "one-shot": {"true"}})
}
