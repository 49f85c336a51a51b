// Package mpecsgostats is a mackerel-agent plugin that reports the Go
// runtime stats of every Go task on Amazon ECS: golang-stats-api-handler's
// /stats, Go's expvar or client_golang's Prometheus /metrics. Targets are
// found through the Docker Engine API on a container instance (the ECS agent
// gives the awsvpc tasks' addresses), or through the task metadata endpoint
// beside a task's containers; what they answer goes to mackerel-agent as
// metric lines, and over OTLP as labeled metrics.
//
// A run goes one way, a file a stage: options (options.go) → a source
// (source.go: docker.go, ecsagent.go, taskmetadata.go) → keys (keys.go) →
// measure (measure.go: the Go runtime's scrape, scrape.go and probe.go, in
// one of the formats of format.go: gostats.go, prometheus.go, expvar.go) →
// rates (rates.go) and state (state.go) → outputs (output.go: mackerel.go,
// otlp.go; list.go for --list) and the run's own health (health.go).
//
// The formats, sources and outputs a run knows are handed to it (parts):
// a new one is a file of its own and one line in Do.
package mpecsgostats

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otelenv"
)

// Do runs the plugin with the process's arguments and returns the exit code.
//
// SIGTERM and SIGINT end the process at once, as they do any command: a
// run writes nothing that an end at any point leaves half-done (the state
// file is replaced whole), and mackerel-agent discards the output of a
// plugin it stops. Catching them would cost every run a thread of its own.
func Do(version string) int {
	ctx := context.Background()
	// A run is one short process: a garbage collection in it is work that
	// pays off only if the process lives on. Unless GOGC or GOMEMLIMIT say
	// otherwise, the heap may grow five times over its live part before one
	// (a run over 30 tasks with the OTLP push collects none, instead of one
	// of 2 to 4 ms of CPU), and whatever the growth, the process is
	// collected as it nears 32 MiB (1,000 targets stay at the peak memory
	// they had with Go's defaults).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(32 << 20)
	}
	p := defaultParts(time.Now)
	// the plugin's own OpenTelemetry environment, read here only
	p.otelResourceAttrs = os.Getenv(otelenv.ResourceAttributesVar)
	return run(ctx, p, os.Args[1:], version, os.Stdout, os.Stderr)
}

// parts are what a run is made of: the formats targets may serve, where
// targets are found, where the series go, and the clock.
type parts struct {
	formats formatList
	sources []sourceKind
	outputs []outputKind
	now     func() time.Time
	// otelResourceAttrs is the plugin process's own OTEL_RESOURCE_ATTRIBUTES:
	// added to every resource an output labels (a target's own values win).
	otelResourceAttrs string
}

// defaultParts are the plugin's own parts: each format, source and output
// is one line here.
func defaultParts(now func() time.Time) parts {
	return parts{
		formats: formatList{gostatsFormat{}, prometheusFormat{}, expvarFormat{}},
		sources: []sourceKind{
			{name: sourceDocker, open: openDockerSource},
			{name: sourceTaskMetadata, open: openTaskMetadataSource},
		},
		outputs: []outputKind{
			{name: outputMackerel, open: openMackerelOutput},
			{name: outputOTLP, open: openOTLPOutput, unused: otlpUnused},
		},
		now: now,
	}
}

// run parses args and does one run: discover, key, measure, compute rates,
// write the outputs, save the state; its wall time counts from the first
// reading of p.now. Metric lines, graph definitions (meta mode), --help,
// --version and --list go to stdout; warnings and errors, one line each, to
// stderr. It returns the exit code: 0, 1 when discovery failed, 2 for bad
// options.
func run(ctx context.Context, p parts, args []string, version string, stdout, stderr io.Writer) int {
	start := p.now()
	opts, code, done := parseOptions(p, args, stdout, stderr)
	if done {
		return code
	}
	opts.otelResourceAttrs = p.otelResourceAttrs
	if opts.Version {
		fmt.Fprintf(stdout, "%s %s\n", pluginName, version)
		return 0
	}
	outs, err := openOutputs(p.outputs, opts, version, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", pluginName, err)
		return 2
	}
	hw := healthWriter{w: stdout, prefix: opts.Prefix, outputs: outs, containers: opts.ContainerMetrics}
	if os.Getenv("MACKEREL_AGENT_PLUGIN_META") != "" {
		return exitCode(stderr, writeMeta(stdout, outs, hw, !opts.NoHealth))
	}

	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	// discovery and the scrapes end early enough to leave the outputs
	// their share of --timeout
	measureTime := opts.Timeout - outs.reserve(opts.Timeout)
	measureCtx, cancelMeasure := context.WithTimeout(ctx, measureTime)
	defer cancelMeasure()
	hc := newHTTPClient(measureTime, opts.Concurrency)
	src := p.source(opts.Source).open(opts, sourceEnv{hc: hc, formats: p.formats, timeout: measureTime, labels: outs.label()})
	if c, ok := src.(io.Closer); ok { // a source's client of its API, for the run
		defer c.Close()
	}
	found, err := src.discover(measureCtx)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", pluginName, err)
		if !opts.List && !opts.NoHealth { // mackerel-agent posts the health lines whatever the exit status
			now := p.now()
			hw.write(now, health{discoveryErrors: 1, elapsed: now.Sub(start)})
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
	if outs.needKeys() {
		r.warnings = append(r.warnings, keyWarnings...)
	}
	targets = outs.keep(targets)

	sc := newScraper(hc, opts, p.formats, measureTime, last.Learnt, start, p.now)
	var cm *containerMeter
	if opts.ContainerMetrics {
		if cs, ok := src.(containerStatser); ok {
			cm = &containerMeter{statser: cs, concurrency: opts.Concurrency, prev: last.Containers, host: defaultHostPaths(), now: p.now,
				sidecars: outs.label()}
		} else {
			r.warnings = append(r.warnings, fmt.Sprintf("no container metrics: --source %s gives no container stats", opts.Source))
		}
	}
	var sl *serviceLookup
	if outs.label() {
		if e, ok := src.(containerEnver); ok {
			sl = &serviceLookup{enver: e, concurrency: opts.Concurrency, known: last.Services}
		}
	}
	m := measure(measureCtx, sc, cm, sl, targets)
	results, notGo := settle(m.runtime, learnt, start) // --format auto
	r.passed = append(r.passed, notGo...)
	for _, res := range results {
		if res.cause != nil && !opts.List {
			r.warnings = append(r.warnings, sc.scrapeError(res).Error())
		}
		keepGraphs(res.values, opts.graphs)
	}
	r.time = p.now()
	reported, next := rates(results, last, r.time)
	for i := range results {
		results[i].reported = reported[i]
	}
	r.results = results
	r.containers, r.containerMetrics = m.containers, opts.ContainerMetrics
	if !opts.List {
		r.warnings = append(r.warnings, m.containers.warnings...)
	}
	r.labels, r.services = outs.label(), m.services.envs
	r.warnings = append(r.warnings, m.services.warnings...)
	next.Slots, next.Learnt = slots, learnt
	next.Containers = containerSamples(m.containers, last.Containers)
	if len(m.services.envs) > 0 {
		next.Services = m.services.envs // the containers listed this run only
	}
	r.health = healthOf(len(candidates)-len(notGo), r.results, found.errors)
	r.health.containerErrors = m.containers.errors

	if opts.List {
		writeWarnings(stderr, r.warnings)
		return exitCode(stderr, printList(stdout, &r))
	}
	errs, err := outs.write(ctx, &r)
	r.health.outputErrors = errs
	r.health.elapsed = p.now().Sub(start)
	writeWarnings(stderr, r.warnings)
	if err == nil && !opts.NoHealth {
		err = hw.write(r.time, r.health)
	}
	if err != nil {
		return exitCode(stderr, err)
	}
	if err := saveState(tempfile, next); err != nil {
		writeWarnings(stderr, []string{"rates will be missing at the next run: " + err.Error()})
	}
	return 0
}

// source is the kind of source named.
func (p parts) source(name string) sourceKind {
	for _, s := range p.sources {
		if s.name == name {
			return s
		}
	}
	return sourceKind{} // parseOptions took only the names of p.sources
}

// sourceEnv is what a run gives its source.
type sourceEnv struct {
	hc      *http.Client
	formats formatList    // what a gostats.format label may name
	timeout time.Duration // the time the run gives discovery and the scrapes
	// labels: an output labels its series with the task's identity, so
	// the source also asks what only labels need (the host's name, the
	// container instance), at the cost of more calls.
	labels bool
}

// exitCode prints err, if any, and is the exit code for it.
func exitCode(stderr io.Writer, err error) int {
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", pluginName, err)
		return 1
	}
	return 0
}
