// Command floor is the least any such plugin must do, for comparison in the
// bench: one container list call to the Docker Engine API (no version
// negotiation), one parallel GET per host TCP port published on IPv4 (Docker
// 20.10 may publish the IPv6 binding of the same container port on another
// host port: that one is the same task and is skipped), and one
// "gostats.<port>.<field>\t<value>\t<epoch>" line per numeric field of each
// answer. No options parsing beyond two flags, no state file, no graphs.
// With -stats, also one stats call a container (/containers/{id}/stats,
// one-shot) beside the GETs, and one line of its CPU and memory usage: what
// --container-metrics asks of the daemon, and no more.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	label := flag.String("l", "", "docker ps --filter label= value")
	withStats := flag.Bool("stats", false, "also one stats call per container")
	flag.Parse()
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	sock := strings.TrimPrefix(host, "unix://")

	docker := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	f := map[string][]string{"status": {"running"}}
	if *label != "" {
		f["label"] = []string{*label}
	}
	fj, _ := json.Marshal(f)
	resp, err := docker.Get("http://docker/containers/json?filters=" + url.QueryEscape(string(fj)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var containers []struct {
		Id    string
		Ports []struct {
			IP         string
			PublicPort uint16
			Type       string
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&containers)
	resp.Body.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	seen := map[uint16]bool{}
	var ports []uint16
	for _, c := range containers {
		for _, p := range c.Ports {
			if p.Type == "tcp" && p.PublicPort != 0 && !strings.Contains(p.IP, ":") && !seen[p.PublicPort] {
				seen[p.PublicPort] = true
				ports = append(ports, p.PublicPort)
			}
		}
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })

	hc := &http.Client{Timeout: 5 * time.Second}
	stats := make([]map[string]any, len(ports))
	var wg sync.WaitGroup
	for i, port := range ports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/stats", port))
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil {
				json.Unmarshal(body, &stats[i])
			}
		}()
	}
	type sample struct {
		CPUStats struct {
			CPUUsage struct{ TotalUsage uint64 } `json:"cpu_usage"`
		} `json:"cpu_stats"`
		MemoryStats struct{ Usage uint64 } `json:"memory_stats"`
	}
	samples := make([]sample, len(containers))
	if *withStats {
		for i, c := range containers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := docker.Get("http://docker/v1.41/containers/" + c.Id + "/stats?stream=false&one-shot=true")
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
				defer resp.Body.Close()
				json.NewDecoder(resp.Body).Decode(&samples[i])
			}()
		}
	}
	wg.Wait()

	now := time.Now().Unix()
	w := bufio.NewWriter(os.Stdout)
	if *withStats {
		for i, c := range containers {
			fmt.Fprintf(w, "container.%.12s\t%d\t%d\t%d\n", c.Id, samples[i].CPUStats.CPUUsage.TotalUsage, samples[i].MemoryStats.Usage, now)
		}
	}
	for i, s := range stats {
		for k, v := range s {
			if f, ok := v.(float64); ok {
				fmt.Fprintf(w, "gostats.%d.%s\t%f\t%d\n", ports[i], k, f, now)
			}
		}
	}
	w.Flush()
}
