// Command dockerapi stands in for the Docker Engine API of an ECS container
// instance running N tasks, on a unix socket. It answers only what the
// plugin, the floor and `docker ps` ask:
//
//	HEAD|GET /_ping                     OK, with Api-Version 1.41 (Docker 20.10)
//	GET /version and /v1.xx/version     a 20.10-like version object
//	GET /containers/json, /v1.xx/…      N containers
//
// The /containers/json answer replays the shape of a capture from a real
// daemon (the -template file, e.g. testdata/containers.json): its first
// container with a published TCP port on 0.0.0.0 is copied N times, each copy
// with its own Id, name, task ARN and one published port bound twice, on
// 0.0.0.0 and on :: — as Docker 20.10+ reports `-p 8080` — whose host port is
// the next line of -ports (a fleet's ports). Every container is running;
// query filters are ignored (all N match). The body is built once at start,
// so the stand-in answers faster than a real dockerd.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const apiVersion = "1.41"

func main() {
	sock := flag.String("socket", "", "unix socket path to listen on (required)")
	template := flag.String("template", "testdata/containers.json", "captured /containers/json answer")
	portsFile := flag.String("ports", "", "host ports, one per line: one container each (required)")
	flag.Parse()
	if *sock == "" || *portsFile == "" {
		flag.Usage()
		os.Exit(2)
	}
	body, n, err := containersJSON(*template, *portsFile)
	if err != nil {
		log.Fatalf("dockerapi: %v", err)
	}

	os.Remove(*sock)
	ln, err := net.Listen("unix", *sock)
	if err != nil {
		log.Fatalf("dockerapi: %v", err)
	}
	versioned := regexp.MustCompile(`^/v[0-9]+\.[0-9]+(/.*)$`)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", apiVersion)
		w.Header().Set("Ostype", "linux")
		w.Header().Set("Docker-Experimental", "false")
		p := r.URL.Path
		if m := versioned.FindStringSubmatch(p); m != nil {
			p = m[1]
		}
		switch p {
		case "/_ping":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
			if r.Method != http.MethodHead {
				w.Write([]byte("OK"))
			}
		case "/version":
			writeJSON(w, map[string]any{
				"Version": "20.10.24+dfsg1", "ApiVersion": apiVersion, "MinAPIVersion": "1.12",
				"Os": "linux", "Arch": "amd64", "GoVersion": "go1.19.8", "KernelVersion": "6.1.0",
			})
		case "/containers/json":
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		default:
			w.WriteHeader(http.StatusNotFound)
			writeJSON(w, map[string]string{"message": "page not found"})
		}
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	log.Printf("dockerapi: %d containers at unix://%s", n, *sock)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	srv.Close()
	os.Remove(*sock)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// containersJSON builds the /containers/json body: the template's first
// container with a TCP port published on 0.0.0.0, once per port.
func containersJSON(templatePath, portsPath string) ([]byte, int, error) {
	b, err := os.ReadFile(templatePath)
	if err != nil {
		return nil, 0, err
	}
	var capture []map[string]any
	if err := json.Unmarshal(b, &capture); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", templatePath, err)
	}
	tmpl := pickTemplate(capture)
	if tmpl == nil {
		return nil, 0, fmt.Errorf("%s: no container with a TCP port published on 0.0.0.0", templatePath)
	}
	pb, err := os.ReadFile(portsPath)
	if err != nil {
		return nil, 0, err
	}
	var out []map[string]any
	for i, line := range strings.Fields(string(pb)) {
		port, err := strconv.ParseUint(line, 10, 16)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %q is not a port", portsPath, line)
		}
		c := clone(tmpl)
		id := fmt.Sprintf("%064x", 0xbe7c0000+i)
		task := fmt.Sprintf("%032x", 0x7a5c0000+i)
		c["Id"] = id
		c["Names"] = []string{fmt.Sprintf("/ecs-bench-1-web-%s", task[12:])}
		labels, _ := c["Labels"].(map[string]any)
		if labels == nil {
			labels = map[string]any{}
			c["Labels"] = labels
		}
		labels["com.amazonaws.ecs.task-arn"] = "arn:aws:ecs:ap-northeast-1:123456789012:task/bench/" + task
		c["State"] = "running"
		c["Ports"] = []map[string]any{
			{"IP": "0.0.0.0", "PrivatePort": 8080, "PublicPort": port, "Type": "tcp"},
			{"IP": "::", "PrivatePort": 8080, "PublicPort": port, "Type": "tcp"},
		}
		out = append(out, c)
	}
	body, err := json.Marshal(out)
	return append(body, '\n'), len(out), err
}

func pickTemplate(capture []map[string]any) map[string]any {
	for _, c := range capture {
		ports, _ := c["Ports"].([]any)
		for _, p := range ports {
			pm, _ := p.(map[string]any)
			if pm["Type"] == "tcp" && pm["IP"] == "0.0.0.0" && pm["PublicPort"] != nil {
				return c
			}
		}
	}
	return nil
}

func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var c map[string]any
	json.Unmarshal(b, &c)
	return c
}
