// Command fleet stands in for N Go tasks on one container instance: a single
// process serving the real github.com/fukata/golang-stats-api-handler at
// /stats on N loopback ports (127.0.0.1, kernel-chosen). It writes the ports,
// one per line, to -ports and then serves until it is terminated.
//
// All N "tasks" share one Go runtime, so their answers are cheaper than N
// real processes' would be (and the handler's ReadMemStats is serialised);
// the bench uses it for the plugin's own cost at N = 100 … 1000, not for the
// tasks' cost.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	stats_api "github.com/fukata/golang-stats-api-handler"
)

func main() {
	n := flag.Int("n", 100, "number of ports to serve")
	portsFile := flag.String("ports", "", "file to write the ports to, one per line (required)")
	flag.Parse()
	if *portsFile == "" || *n < 1 {
		flag.Usage()
		os.Exit(2)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/stats", stats_api.Handler)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	var ports strings.Builder
	for i := 0; i < *n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatalf("fleet: listener %d of %d: %v", i+1, *n, err)
		}
		fmt.Fprintln(&ports, ln.Addr().(*net.TCPAddr).Port)
		go srv.Serve(ln)
	}
	// Written at once under a temporary name: a reader never sees half a list.
	tmp := *portsFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(ports.String()), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(tmp, *portsFile); err != nil {
		log.Fatal(err)
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	srv.Close()
}
