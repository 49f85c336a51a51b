// Command dockerapi serves internal/standin's Docker Engine API stand-in
// (dockerd 20.10, API 1.41) on a unix socket for the bench: an ECS container
// instance running one task per line of -ports (a fleet's ports), in the
// shape of the -template capture (see standin.FleetContainers). It serves
// until it is terminated.
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/standin"
)

func main() {
	sock := flag.String("socket", "", "unix socket path to listen on (required)")
	template := flag.String("template", "testdata/containers.json", "captured /containers/json answer")
	portsFile := flag.String("ports", "", "host ports, one per line: one container each (required)")
	flag.Parse()
	if *sock == "" || *portsFile == "" {
		flag.Usage()
		os.Exit(2)
	}
	capture, err := os.ReadFile(*template)
	if err != nil {
		log.Fatalf("dockerapi: %v", err)
	}
	b, err := os.ReadFile(*portsFile)
	if err != nil {
		log.Fatalf("dockerapi: %v", err)
	}
	var ports []uint16
	for _, f := range strings.Fields(string(b)) {
		p, err := strconv.ParseUint(f, 10, 16)
		if err != nil {
			log.Fatalf("dockerapi: %s: %q is not a port", *portsFile, f)
		}
		ports = append(ports, uint16(p))
	}
	body, err := standin.FleetContainers(capture, ports)
	if err != nil {
		log.Fatalf("dockerapi: %s: %v", *template, err)
	}

	d := &standin.Docker{Containers: body}
	host, err := d.Listen("unix", *sock)
	if err != nil {
		log.Fatalf("dockerapi: %v", err)
	}
	log.Printf("dockerapi: %d containers at %s", len(ports), host)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	d.Close()
}
