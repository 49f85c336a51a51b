// Package mpecsgostats is a mackerel-agent plugin that reports the Go
// runtime stats of every Go task on Amazon ECS: golang-stats-api-handler's
// /stats or Go's expvar. Targets are found through the Docker Engine API on
// a container instance (the ECS agent gives the awsvpc tasks' addresses),
// or through the task metadata endpoint beside a task's containers.
//
// A run goes one way, a file a stage: options (options.go) → a source
// (source.go: docker.go, ecsagent.go, taskmetadata.go) → keys (keys.go) →
// scrape (scrape.go, a format each: format.go, gostats.go, expvar.go) →
// rates (rates.go) and state (state.go) → outputs (output.go: mackerel.go,
// list.go).
package mpecsgostats

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"
)

// Do runs the plugin with the process's arguments and returns the exit code.
func Do(version string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, time.Now(), os.Args[1:], version, os.Stdout, os.Stderr)
}

// run parses args and does one run: discover, key, scrape, compute rates,
// write the outputs, save the state; its wall time counts from start.
// Metric lines, graph definitions (meta mode), --help, --version and --list
// go to stdout; warnings and errors, one line each, to stderr. It returns
// the exit code: 0, 1 when discovery failed, 2 for bad options.
func run(ctx context.Context, start time.Time, args []string, version string, stdout, stderr io.Writer) int {
	opts, code, done := parseOptions(args, stdout, stderr)
	if done {
		return code
	}
	if opts.Version {
		fmt.Fprintf(stdout, "%s %s\n", pluginName, version)
		return 0
	}
	mackerel := mackerelOutput{w: stdout, prefix: opts.Prefix, graphs: opts.graphs, values: opts.outputs[outputMackerel],
		health: !opts.NoHealth && !opts.List, otlp: opts.outputs[outputOTLP]}
	if os.Getenv("MACKEREL_AGENT_PLUGIN_META") != "" {
		mackerel.health = !opts.NoHealth
		return exitCode(stderr, mackerel.meta())
	}

	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	// With otlp in --output, discovery and the scrapes end early enough to
	// leave the push its share of --timeout.
	scrapeTime := opts.Timeout - opts.Timeout*otlpShare(opts)/100
	scrapeCtx, cancelScrapes := context.WithTimeout(ctx, scrapeTime)
	defer cancelScrapes()
	hc := newHTTPClient(scrapeTime)
	found, err := newSource(opts, hc).discover(scrapeCtx)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", pluginName, err)
		if !opts.List { // mackerel-agent posts the health lines whatever the exit status
			now := time.Now()
			mackerel.write(&report{time: now, health: health{discoveryErrors: 1, elapsed: now.Sub(start), otlp: opts.outputs[outputOTLP]}})
		}
		return 1
	}

	tempfile := opts.tempfile(args)
	last, err := loadState(tempfile)
	r := report{passed: found.passed, warnings: found.warnings}
	if err != nil {
		r.warnings = append(r.warnings, err.Error())
	}
	candidates, notGo, learnt := notGoYet(found.targets, last.Learnt, start) // --format auto
	r.passed = append(r.passed, notGo...)
	targets, keyWarnings, slots := assignKeys(opts.keyTemplate, candidates, last)
	if opts.outputs[outputMackerel] {
		r.warnings = append(r.warnings, keyWarnings...)
	}
	if !opts.outputs[outputOTLP] { // a target without a key has nowhere to go
		targets = slices.DeleteFunc(targets, func(k keyed) bool { return k.key == "" && k.bad == nil })
	}

	sc := newScraper(hc, opts, scrapeTime, last.Learnt, start)
	results, notGo := settle(sc.scrape(scrapeCtx, targets), learnt, start) // --format auto
	r.passed = append(r.passed, notGo...)
	for _, res := range results {
		if res.cause != nil && !opts.List {
			r.warnings = append(r.warnings, sc.scrapeError(res).Error())
		}
		keepGraphs(res.values, opts.graphs)
	}
	r.results, r.time = results, time.Now()
	next := rates(r.results, last, r.time)
	next.Slots, next.Learnt = slots, learnt
	r.health = healthOf(len(candidates)-len(notGo), r.results, found.errors)
	if opts.outputs[outputOTLP] && !opts.List {
		failed, warnings := newOTLPOutput(opts, version).write(ctx, &r)
		r.warnings = append(r.warnings, warnings...)
		r.health.otlp, r.health.otlpErrors = true, failed
	}
	r.health.elapsed = time.Since(start)

	writeWarnings(stderr, r.warnings)
	if opts.List {
		return exitCode(stderr, printList(stdout, &r))
	}
	if err := mackerel.write(&r); err != nil {
		return exitCode(stderr, err)
	}
	if err := saveState(tempfile, next); err != nil {
		writeWarnings(stderr, []string{"rates will be missing at the next run: " + err.Error()})
	}
	return 0
}

// otlpShare is the percentage of --timeout the OTLP push keeps for itself.
func otlpShare(opts options) time.Duration {
	if opts.outputs[outputOTLP] {
		return 25
	}
	return 0
}

// exitCode prints err, if any, and is the exit code for it.
func exitCode(stderr io.Writer, err error) int {
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", pluginName, err)
		return 1
	}
	return 0
}
