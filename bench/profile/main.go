// Command profile runs the plugin's whole run (options, discovery, scrape,
// output) in-process -runs times against whatever DOCKER_HOST points at and
// writes a CPU profile and a heap (alloc) profile for go tool pprof. Process
// start-up (package init, runtime start) is not in these profiles: measure it
// with GODEBUG=inittrace=1 on the built binary.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	mpecsgostats "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/lib"
)

func main() {
	runs := flag.Int("runs", 20, "plugin runs to profile")
	cpuOut := flag.String("cpuprofile", "cpu.pprof", "CPU profile output")
	memOut := flag.String("memprofile", "mem.pprof", "allocation profile output")
	tempfile := flag.String("tempfile", "", "plugin state file (--tempfile, required)")
	flag.Parse()

	// The helper prints metric lines straight to os.Stdout.
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		fail(err)
	}
	stdout := os.Stdout
	os.Stdout = devnull
	if *tempfile == "" {
		fail(fmt.Errorf("-tempfile is required"))
	}
	// the plugin as its main runs it: arguments from os.Args, output to
	// os.Stdout and os.Stderr, both sent to /dev/null here
	os.Args = append([]string{"mackerel-plugin-ecs-gostats", "--tempfile", *tempfile}, flag.Args()...)
	os.Stderr = devnull

	// The helper prints nothing when its state is less than 1 s old, so a
	// seed run's state, left to age, is put back before every profiled run:
	// each run then computes rates as a steady-state run does.
	if code := mpecsgostats.Do("bench"); code != 0 {
		fail(fmt.Errorf("seed run: exit %d", code))
	}
	seed, err := os.ReadFile(*tempfile)
	if err != nil {
		fail(err)
	}
	time.Sleep(1100 * time.Millisecond)

	f, err := os.Create(*cpuOut)
	if err != nil {
		fail(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fail(err)
	}
	start := time.Now()
	for i := 0; i < *runs; i++ {
		if err := os.WriteFile(*tempfile, seed, 0o644); err != nil {
			fail(err)
		}
		if code := mpecsgostats.Do("bench"); code != 0 {
			fail(fmt.Errorf("run %d: exit %d", i+1, code))
		}
	}
	elapsed := time.Since(start)
	pprof.StopCPUProfile()
	f.Close()

	m, err := os.Create(*memOut)
	if err != nil {
		fail(err)
	}
	if err := pprof.Lookup("allocs").WriteTo(m, 0); err != nil {
		fail(err)
	}
	m.Close()
	fmt.Fprintf(stdout, "%d in-process runs: %.1f ms each\n", *runs, float64(elapsed.Milliseconds())/float64(*runs))
}

// stderr is the process's, kept when os.Stderr is sent to /dev/null.
var stderr = os.Stderr

func fail(err error) {
	fmt.Fprintln(stderr, "profile:", err)
	os.Exit(1)
}
