// Package standin holds stand-ins for the HTTP APIs mackerel-plugin-ecs-gostats
// reads on an ECS container instance, shared by its tests and its bench. A
// stand-in answers as the real server does, with answers recorded from it
// (testdata/), for what a real server does not show on demand (faults, other
// versions) or at a scale a test machine does not run.
package standin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Docker stands in for the Docker Engine API of the dockerd an ECS container
// instance runs: Docker 20.10, Engine API 1.41 (the ECS-optimized AMIs'
// version), on a unix socket or on TCP loopback. It answers what the plugin,
// the bench's floor and `docker ps` ask, as dockerd 20.10 answers it (the
// headers are those of a recorded dockerd 20.10.24 answer):
//
//	HEAD|GET /_ping                 200 "OK", with Api-Version
//	GET [/v<version>]/containers/json   200 and Containers, byte for byte
//	                                (query filters are not applied), or
//	                                FaultStatus and FaultBody when set
//	GET .../info                    200 {"Name": Name}
//	GET .../containers/{id}/json    200 and Inspect[id], byte for byte, else
//	                                {"Id": id, "Config": {"Env": Env[id]}}
//	GET .../containers/{id}/stats   200 and Stats[id], one answer a call in
//	                                turn; 404 "No such container" for an id
//	                                without any; 404 "page not found" for
//	                                every id with NoStats
//	anything else                   404 {"message":"page not found"}
//
// Faults make the inspect or the stats calls of one container fail.
//
// A version outside MinAPIVersion … APIVersion is refused as moby's version
// middleware refuses it: 400 {"message":"client version 1.41 is too old.
// Minimum supported API version is 1.44, please upgrade your client to a
// newer version"}. A path without a version is served at APIVersion.
//
// Set the fields, then Listen. Every request is logged (see Requests).
type Docker struct {
	// Containers is the /containers/json body: bytes recorded from a real
	// daemon (testdata/containers.json) or built from them (FleetContainers),
	// so that the real Docker client decodes them as it decodes dockerd's.
	Containers []byte
	// FaultStatus, when not zero, is the status /containers/json answers
	// with, and FaultBody its application/json body, as dockerd sends an
	// error (testdata/docker_500.json).
	FaultStatus int
	FaultBody   []byte
	// APIVersion is the version announced in Api-Version and the highest one
	// served; "" is "1.41" (Docker 20.10).
	APIVersion string
	// MinAPIVersion is the lowest version served; "" is "1.12" (Docker
	// 20.10's). Docker 29 serves 1.44 and later only: APIVersion "1.51" and
	// MinAPIVersion "1.44" make a daemon that refuses API 1.41.
	MinAPIVersion string
	// ServerVersion is the engine version in the Server header; "" is
	// "20.10.24+dfsg1".
	ServerVersion string
	// Name is the daemon's name in GET /info (the host's name); "" is
	// "standin-host".
	Name string
	// Env is each container's environment in GET /containers/{id}/json (the
	// inspect answer has Id and Config.Env only); a container it does not
	// have answers with an empty environment.
	Env map[string][]string
	// Inspect is the whole GET /containers/{id}/json answer of a container
	// by id, when a test needs more of it than Env (HostConfig, State).
	Inspect map[string][]byte
	// Stats are the GET /containers/{id}/stats answers of a container by
	// id, one a call in turn, the last one repeated: answers recorded from a
	// real daemon.
	Stats map[string][][]byte
	// NoStats answers every stats path 404 "page not found", as a daemon
	// without the endpoint does.
	NoStats bool
	// Faults make one kind of call of one container fail, by "inspect <id>"
	// or "stats <id>": FaultServer (500 and dockerd's {"message": ...}:
	// "inspect failed", "cgroup read failed"),
	// FaultHang (no answer before the client gives up), FaultGarbage (a
	// cut-off JSON answer with status 200) or FaultGone (404 "No such
	// container", as for a container removed after the list).
	Faults map[string]string

	mu       sync.Mutex
	requests []string       // "METHOD /path?query"
	served   map[string]int // stats answers given, by id
	srv      *http.Server
	sock     string
}

// The faults of Docker.Faults.
const (
	FaultServer  = "500"
	FaultHang    = "hang"
	FaultGarbage = "garbage"
	FaultGone    = "404"
)

// Defaults of the Docker fields: dockerd 20.10's.
const (
	DockerAPIVersion    = "1.41"
	DockerMinAPIVersion = "1.12"
	DockerServerVersion = "20.10.24+dfsg1"
)

// Listen serves d on a unix socket at address (network "unix"; a stale
// socket file is replaced) or on a loopback TCP address such as
// "127.0.0.1:0" (network "tcp"), and returns the DOCKER_HOST that reaches
// it: unix:///path or tcp://127.0.0.1:port.
func (d *Docker) Listen(network, address string) (string, error) {
	var host string
	switch network {
	case "unix":
		os.Remove(address)
		host = "unix://" + address
		d.sock = address
	case "tcp":
		h, _, err := net.SplitHostPort(address)
		if ip := net.ParseIP(h); err != nil || ip == nil || !ip.IsLoopback() {
			return "", fmt.Errorf("standin: %q is not a loopback address", address)
		}
	default:
		return "", fmt.Errorf("standin: network %q: want unix or tcp", network)
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return "", err
	}
	if network == "tcp" {
		host = "tcp://" + ln.Addr().String()
	}
	d.srv = &http.Server{Handler: http.HandlerFunc(d.serve), ReadHeaderTimeout: 5 * time.Second}
	go d.srv.Serve(ln)
	return host, nil
}

// Start serves d for the test's duration, on a unix socket in a temporary
// directory (network "unix") or on TCP loopback ("tcp"), and returns its
// DOCKER_HOST.
func (d *Docker) Start(t testing.TB, network string) string {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "docker.sock")
	}
	host, err := d.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return host
}

// Close stops serving and removes the unix socket.
func (d *Docker) Close() error {
	if d.srv == nil {
		return nil
	}
	err := d.srv.Close()
	if d.sock != "" {
		os.Remove(d.sock)
	}
	return err
}

// Requests returns the requests served so far, as "METHOD /path" (without
// the query), in order.
func (d *Docker) Requests() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, len(d.requests))
	for i, r := range d.requests {
		out[i], _, _ = strings.Cut(r, "?")
	}
	return out
}

// RequestURIs returns the requests served so far, as "METHOD /path?query",
// in order.
func (d *Docker) RequestURIs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.requests...)
}

// Calls counts the requests served so far whose "METHOD /path" (without
// the API version prefix) is call, such as "GET /containers/json" or
// "GET /containers/<id>/stats".
func (d *Docker) Calls(call string) int {
	n := 0
	for _, r := range d.Requests() {
		method, path, _ := strings.Cut(r, " ")
		if m := versionedPath.FindStringSubmatch(path); m != nil {
			path = m[2]
		}
		if method+" "+path == call {
			n++
		}
	}
	return n
}

var versionedPath = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

func (d *Docker) serve(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	req := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		req += "?" + r.URL.RawQuery
	}
	d.requests = append(d.requests, req)
	d.mu.Unlock()

	max, min, server := or(d.APIVersion, DockerAPIVersion), or(d.MinAPIVersion, DockerMinAPIVersion), or(d.ServerVersion, DockerServerVersion)
	path, version := r.URL.Path, ""
	if m := versionedPath.FindStringSubmatch(path); m != nil {
		version, path = m[1], m[2]
	}
	inspected, isInspect := containerPath(path, "/json")
	statsOf, isStats := containerPath(path, "/stats")
	route := path == "/_ping" && (r.Method == http.MethodGet || r.Method == http.MethodHead) ||
		(path == "/containers/json" || path == "/info" || isInspect || isStats) && r.Method == http.MethodGet
	if !route {
		writeJSON(w, http.StatusNotFound, "page not found")
		return
	}
	// moby's version middleware
	h := w.Header()
	h.Set("Server", "Docker/"+server+" (linux)")
	h.Set("Api-Version", max)
	h.Set("Ostype", "linux")
	if version == "" {
		version = max
	}
	switch {
	case compareVersions(version, min) < 0:
		writeJSON(w, http.StatusBadRequest, fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", version, min))
		return
	case compareVersions(version, max) > 0:
		writeJSON(w, http.StatusBadRequest, fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", version, max))
		return
	}
	h.Set("Docker-Experimental", "false")

	switch {
	case path == "/info":
		h.Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"Name": or(d.Name, "standin-host")})
		return
	case isInspect:
		if d.fault(w, r, "inspect", inspected) {
			return
		}
		h.Set("Content-Type", "application/json")
		if b, ok := d.Inspect[inspected]; ok {
			w.Write(b)
			return
		}
		env := d.Env[inspected]
		if env == nil {
			env = []string{}
		}
		json.NewEncoder(w).Encode(map[string]any{"Id": inspected, "Config": map[string]any{"Env": env}})
		return
	case isStats:
		d.stats(w, r, statsOf)
		return
	}
	switch path {
	case "/_ping":
		h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
		h.Set("Pragma", "no-cache")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		if r.Method == http.MethodHead {
			h.Set("Content-Length", "0")
			return
		}
		w.Write([]byte("OK"))
	case "/containers/json":
		h.Set("Content-Type", "application/json")
		if d.FaultStatus != 0 {
			w.WriteHeader(d.FaultStatus)
			w.Write(d.FaultBody)
			return
		}
		w.Write(d.Containers)
	}
}

// stats answers GET /containers/{id}/stats.
func (d *Docker) stats(w http.ResponseWriter, r *http.Request, id string) {
	if d.NoStats {
		writeJSON(w, http.StatusNotFound, "page not found")
		return
	}
	if d.fault(w, r, "stats", id) {
		return
	}
	answers := d.Stats[id]
	if len(answers) == 0 {
		writeJSON(w, http.StatusNotFound, "No such container: "+id)
		return
	}
	d.mu.Lock()
	if d.served == nil {
		d.served = map[string]int{}
	}
	n := d.served[id]
	d.served[id]++
	d.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write(answers[min(n, len(answers)-1)])
}

// faultMessages are the messages of FaultServer, by call.
var faultMessages = map[string]string{"inspect": "inspect failed", "stats": "cgroup read failed"}

// fault answers a call (inspect or stats) of container id with its fault
// in Faults, and tells whether it had one.
func (d *Docker) fault(w http.ResponseWriter, r *http.Request, call, id string) bool {
	switch d.Faults[call+" "+id] {
	case FaultServer:
		writeJSON(w, http.StatusInternalServerError, faultMessages[call])
	case FaultHang:
		<-r.Context().Done()
	case FaultGarbage:
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"read": "2026-`))
	case FaultGone:
		writeJSON(w, http.StatusNotFound, "No such container: "+id)
	default:
		return false
	}
	return true
}

// containerPath is the container id of a /containers/{id}<suffix> path.
func containerPath(path, suffix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/containers/")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, suffix)
	return id, ok && id != "" && !strings.Contains(id, "/")
}

// writeJSON writes an error as dockerd does: {"message":"…"} and a newline.
func writeJSON(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(map[string]string{"message": message})
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// compareVersions compares API versions "major.minor" numerically.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// FleetContainers builds a /containers/json answer for a fleet of tasks on
// one container instance, one container per host port in ports, from a real
// capture (testdata/containers.json). Each container is a copy of the
// capture's template container — the first that publishes exactly one TCP
// container port, under one host port on both 0.0.0.0 and :: (what `-p 8080`
// gives on dockerd 20.10; in testdata/containers.json, ecs-web-3-web-…) — as
// recorded, field for field and in the recorded order, with only these
// changed, for the container at index i:
//
//	Id                            the recorded one with its first 12 hex digits i+1
//	Names                         the recorded name with its random suffix i in 4 digits
//	                              (/ecs-web-3-web-0001 for i = 1)
//	task-arn label                the recorded ARN with the task id i+1 in 32 hex digits
//	Ports                         the recorded bindings with PublicPort ports[i]
//
// The answer is compact JSON ending in a newline, as dockerd writes it.
func FleetContainers(capture []byte, ports []uint16) ([]byte, error) {
	var containers []json.RawMessage
	if err := json.Unmarshal(capture, &containers); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	var tmpl object
	for _, raw := range containers {
		var c struct {
			Ports []struct {
				IP          string
				PrivatePort uint16
				PublicPort  uint16
				Type        string
			}
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("capture: %w", err)
		}
		if p := c.Ports; len(p) == 2 && p[0].Type == "tcp" && p[1].Type == "tcp" &&
			p[0].PrivatePort == p[1].PrivatePort && p[0].PublicPort != 0 && p[0].PublicPort == p[1].PublicPort &&
			p[0].IP == "0.0.0.0" && p[1].IP == "::" {
			var err error
			if tmpl, err = parseObject(raw); err != nil {
				return nil, err
			}
			break
		}
	}
	if tmpl == nil {
		return nil, errors.New("capture: no container publishes one TCP port on 0.0.0.0 and ::")
	}
	var id string
	var names []string
	if err := tmpl.get("Id", &id); err != nil || len(id) != 64 {
		return nil, fmt.Errorf("capture: template Id %q: %v", id, err)
	}
	if err := tmpl.get("Names", &names); err != nil || len(names) != 1 || !strings.Contains(names[0], "-") {
		return nil, fmt.Errorf("capture: template Names %q: %v", names, err)
	}
	labels, err := parseObject(tmpl.raw("Labels"))
	if err != nil {
		return nil, fmt.Errorf("capture: template Labels: %w", err)
	}
	var arn string
	if err := labels.get("com.amazonaws.ecs.task-arn", &arn); err != nil || !strings.Contains(arn, "/") {
		return nil, fmt.Errorf("capture: template task-arn %q: %v", arn, err)
	}
	var bindings []json.RawMessage
	if err := json.Unmarshal(tmpl.raw("Ports"), &bindings); err != nil {
		return nil, fmt.Errorf("capture: template Ports: %w", err)
	}
	namePrefix := names[0][:strings.LastIndex(names[0], "-")+1]
	arnPrefix := arn[:strings.LastIndex(arn, "/")+1]

	var out bytes.Buffer
	out.WriteByte('[')
	for i, port := range ports {
		c := tmpl.clone()
		c.set("Id", fmt.Sprintf("%012x%s", i+1, id[12:]))
		c.set("Names", []string{fmt.Sprintf("%s%04d", namePrefix, i)})
		l := labels.clone()
		l.set("com.amazonaws.ecs.task-arn", fmt.Sprintf("%s%032x", arnPrefix, i+1))
		c.set("Labels", l)
		var ps []object
		for _, b := range bindings {
			p, err := parseObject(b)
			if err != nil {
				return nil, fmt.Errorf("capture: template Ports: %w", err)
			}
			p.set("PublicPort", port)
			ps = append(ps, p)
		}
		c.set("Ports", ps)
		if i > 0 {
			out.WriteByte(',')
		}
		b, err := c.MarshalJSON()
		if err != nil {
			return nil, err
		}
		out.Write(b)
	}
	out.WriteString("]\n")
	return out.Bytes(), nil
}

// object is a JSON object with its members in their recorded order and
// their values as recorded.
type object []member

type member struct {
	key   string
	value json.RawMessage
}

func parseObject(b []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object: %.40q", b)
	}
	var o object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o = append(o, member{tok.(string), v})
	}
	return o, nil
}

func (o object) raw(key string) json.RawMessage {
	for _, m := range o {
		if m.key == key {
			return m.value
		}
	}
	return nil
}

func (o object) get(key string, v any) error {
	raw := o.raw(key)
	if raw == nil {
		return fmt.Errorf("no %s", key)
	}
	return json.Unmarshal(raw, v)
}

// set replaces the value of key, keeping its place; v cannot fail to
// marshal. Strings are written as dockerd writes them (no HTML escaping).
func (o object) set(key string, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	for i := range o {
		if o[i].key == key {
			o[i].value = bytes.TrimSuffix(b.Bytes(), []byte("\n"))
		}
	}
}

func (o object) clone() object { return append(object(nil), o...) }

// MarshalJSON writes o compact, members in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		if err := json.Compact(&b, m.value); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
