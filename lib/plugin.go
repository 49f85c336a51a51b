// Package mpecsgostats is a mackerel-agent plugin that reports the
// golang-stats-api-handler stats of every Go task on an ECS container
// instance, found through the Docker Engine API.
package mpecsgostats

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/jessevdk/go-flags"
	"github.com/mackerelio/golib/pluginutil"
)

const pluginName = "mackerel-plugin-ecs-gostats"

type options struct {
	Source          string        `long:"source" default:"docker" choice:"docker" choice:"task-metadata" description:"where targets are found: the Docker daemon's containers (on an ECS container instance), or the containers of the task the plugin runs in, from the ECS task metadata endpoint (beside mackerel-container-agent, on Fargate or EC2)"`
	DockerHost      string        `short:"H" long:"docker-host" env:"DOCKER_HOST" default:"unix:///var/run/docker.sock" value-name:"ADDR" description:"Docker daemon address (unix:// or tcp://)"`
	ECSAgentURL     string        `long:"ecs-agent-url" default:"http://127.0.0.1:51678" value-name:"URL" description:"the ECS agent's introspection API, asked (once a run) for the addresses of awsvpc tasks when Docker lists any"`
	TaskMetadataURL string        `long:"task-metadata-url" env:"ECS_CONTAINER_METADATA_URI_V4" default-mask:"-" value-name:"URL" description:"with --source task-metadata: the task metadata endpoint (v4) of the task"`
	Names           []string      `short:"n" long:"name" value-name:"NAME" description:"only containers whose name matches, as docker ps --filter name= (repeatable)"`
	Labels          []string      `short:"l" long:"label" value-name:"KEY[=VALUE]" description:"only containers with this label, as docker ps --filter label= (repeatable)"`
	ContainerPort   uint16        `short:"P" long:"container-port" value-name:"N" description:"the container port to scrape (default: every published TCP port; with --address container-ip, awsvpc tasks and --source task-metadata, every TCP port the container lists)"`
	Host            string        `long:"host" value-name:"ADDR" description:"address to reach the mapped ports (default: the binding's HostIP when specific, else 127.0.0.1, or ::1 for a port published on :: only)"`
	Scheme          string        `long:"scheme" default:"http" choice:"http" choice:"https" description:"scheme of the stats endpoint"`
	Format          string        `long:"format" default:"gostats" choice:"gostats" choice:"expvar" description:"what the endpoint serves: golang-stats-api-handler's JSON (gostats) or Go's expvar (expvar)"`
	Path            string        `short:"p" long:"path" value-name:"PATH" description:"path of the stats endpoint (default: /stats, or /debug/vars with --format expvar)"`
	Timeout         time.Duration `short:"t" long:"timeout" default:"5s" value-name:"DURATION" description:"one deadline for the whole run: finding the targets and every scrape (targets are scraped in parallel)"`
	Concurrency     int           `short:"c" long:"concurrency" default:"128" value-name:"N" description:"scrapes in flight at once"`
	Address         string        `long:"address" default:"host-port" choice:"host-port" choice:"container-ip" description:"how targets are reached: the published host port, or the container's own address and private port (needs no published port; works from inside a container with the Docker socket mounted); awsvpc tasks are reached at their task's address either way"`
	Network         string        `long:"network" value-name:"NAME" description:"with --address container-ip: the Docker network whose address is used (default: the first, by name, that gives the container an IPv4 address)"`
	Prefix          string        `long:"metric-key-prefix" default:"gostats" value-name:"PREFIX" description:"metric key prefix"`
	Key             string        `long:"key" value-name:"TEMPLATE" description:"the task part of every metric key, from {port} {container_port} {family} {revision} {container} {task} {name} {slot}; e.g. '{family}-{slot}' survives deploys (default: {port} with --source docker, {container} with --source task-metadata)"`
	Graphs          string        `long:"graphs" value-name:"LIST" description:"graphs to send, comma-separated, of runtime, memory, operation, heap, gc, objects, allocation (default: all)"`
	NoHealth        bool          `long:"no-health" description:"do not print the run's own metrics (PREFIX_scrape.*: targets found, ok and failed, run time, discovery errors)"`
	Tempfile        string        `long:"tempfile" value-name:"PATH" description:"state file for rates (default: one per command line in the plugin work dir)"`
	List            bool          `long:"list" description:"print one line per discovered target and whether it answered, then exit"`
	Version         bool          `short:"v" long:"version" description:"print the version and exit"`

	keyTemplate keyTemplate     // parsed Key
	graphs      map[string]bool // parsed Graphs; nil: all
}

// Do runs the plugin with the process's arguments and returns the exit code.
func Do(version string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], version, os.Stdout, os.Stderr)
}

// Run parses args and does one run: discover, key, scrape, print, save the
// state. Metric lines, graph definitions (meta mode), --help, --version and
// --list go to stdout; warnings and errors, one line each, to stderr. It
// returns the exit code: 0, 1 when discovery failed, 2 for bad options.
func Run(ctx context.Context, args []string, version string, stdout, stderr io.Writer) int {
	return run(ctx, time.Now(), args, version, stdout, stderr)
}

// run is Run from start, the time the run's wall time is counted from.
func run(ctx context.Context, start time.Time, args []string, version string, stdout, stderr io.Writer) int {
	opts, code, done := parseOptions(args, stdout, stderr)
	if done {
		return code
	}
	if opts.Version {
		fmt.Fprintf(stdout, "%s %s\n", pluginName, version)
		return 0
	}
	if os.Getenv("MACKEREL_AGENT_PLUGIN_META") != "" {
		if err := printMeta(stdout, opts.Prefix, opts.graphs, !opts.NoHealth); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", pluginName, err)
			return 1
		}
		return 0
	}

	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	hc := newHTTPClient(opts.Timeout)
	found, err := discover(ctx, hc, opts)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", pluginName, err)
		if !opts.List && !opts.NoHealth { // mackerel-agent posts them whatever the exit status
			now := time.Now()
			printValues(stdout, healthLines(opts.Prefix, 0, nil, 1, now.Sub(start), now))
		}
		return 1
	}
	tempfile := opts.Tempfile
	if tempfile == "" {
		tempfile = defaultTempfile(args)
	}
	last, err := loadState(tempfile)
	warnings := found.warnings
	if err != nil {
		warnings = append(warnings, err.Error())
	}

	discoveryErrors := 0
	// The targets found are scraped while the ECS agent, if asked, gives the
	// awsvpc tasks' addresses; those are scraped as soon as it answers.
	sc := newScraper(hc, opts)
	targets := found.targets
	wait := sc.start(ctx, scrapeable(opts.keyTemplate, targets))
	if len(found.awsvpc) > 0 {
		agent := ECSAgent{URL: opts.ECSAgentURL, ContainerPort: opts.ContainerPort}
		more, agentWarnings, err := agent.Targets(ctx, hc, opts.Timeout, found.awsvpc)
		warnings = append(warnings, agentWarnings...)
		if err != nil {
			warnings = append(warnings, err.Error())
			discoveryErrors++
		}
		targets = append(slices.Clip(targets), more...)
		first, rest := wait, sc.start(ctx, scrapeable(opts.keyTemplate, more))
		wait = func() []result { return append(first(), rest()...) }
	}
	scraped := wait()

	keyedTargets, keyWarnings, slots := assignKeys(opts.keyTemplate, targets, last)
	for _, w := range append(warnings, keyWarnings...) {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	results := withKeys(scraped, keyedTargets)
	if opts.List {
		printList(stdout, results)
		return 0
	}
	for _, r := range results {
		if r.cause != nil {
			fmt.Fprintf(stderr, "warning: %v\n", scrapeError(r.target, opts, r.cause))
		}
		keepGraphs(r.values, opts.graphs)
	}

	now := time.Now()
	lines, next := report(opts.Prefix, results, last, now)
	next.Slots = slots
	if !opts.NoHealth {
		lines = append(lines, healthLines(opts.Prefix, len(targets), results, discoveryErrors, now.Sub(start), now)...)
	}
	if err := printValues(stdout, lines); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", pluginName, err)
		return 1
	}
	if err := saveState(tempfile, next); err != nil {
		fmt.Fprintf(stderr, "warning: rates will be missing at the next run: %v\n", err)
	}
	return 0
}

var prefixPattern = regexp.MustCompile(`^[-a-zA-Z0-9_]+(\.[-a-zA-Z0-9_]+)*$`)

// parseOptions returns the options, or done with the exit code when the
// run ends here (help, or a usage error already printed).
func parseOptions(args []string, stdout, stderr io.Writer) (opts options, code int, done bool) {
	p := flags.NewParser(&opts, flags.HelpFlag|flags.PassDoubleDash)
	p.Name = pluginName
	rest, err := p.ParseArgs(args)
	if err != nil {
		var ferr *flags.Error
		if errors.As(err, &ferr) && ferr.Type == flags.ErrHelp {
			fmt.Fprint(stdout, ferr.Message)
			return opts, 0, true
		}
		fmt.Fprintf(stderr, "%s: %v\n", pluginName, err)
		return opts, 2, true
	}
	if opts.DockerHost == "" {
		opts.DockerHost = defaultDockerHost
	}
	if !p.FindOptionByLongName("path").IsSet() {
		opts.Path = defaultPath(opts.Format)
	}
	if !p.FindOptionByLongName("key").IsSet() {
		opts.Key = defaultKey
		if opts.Source == sourceTaskMetadata {
			opts.Key = defaultTaskMetadataKey
		}
	}
	onlyWith := func(name, source string) bool {
		o := p.FindOptionByLongName(name)
		return o.IsSet() && !o.IsSetDefault() && opts.Source != source
	}
	switch {
	case len(rest) > 0:
		err = fmt.Errorf("unexpected argument %q", rest[0])
	case !prefixPattern.MatchString(opts.Prefix):
		err = fmt.Errorf("--metric-key-prefix %q: use letters, digits, '-', '_' and '.' only", opts.Prefix)
	case opts.Timeout <= 0:
		err = fmt.Errorf("--timeout %s: must be positive", opts.Timeout)
	case opts.Concurrency < 1:
		err = fmt.Errorf("--concurrency %d: must be at least 1", opts.Concurrency)
	case !strings.HasPrefix(opts.Path, "/"):
		err = fmt.Errorf("--path %q: must start with /", opts.Path)
	case opts.Network != "" && opts.Address != addressContainerIP:
		err = fmt.Errorf("--network %q: only with --address container-ip", opts.Network)
	}
	for _, name := range []string{"docker-host", "ecs-agent-url", "address", "host"} {
		if err == nil && onlyWith(name, sourceDocker) {
			err = fmt.Errorf("--%s: only with --source docker", name)
		}
	}
	if err == nil && onlyWith("task-metadata-url", sourceTaskMetadata) {
		err = fmt.Errorf("--task-metadata-url: only with --source task-metadata")
	}
	if err == nil && opts.Source == sourceTaskMetadata {
		_, err = compileNames(opts.Names)
	}
	if err == nil {
		opts.keyTemplate, err = parseKeyTemplate(opts.Key)
	}
	if err == nil {
		opts.graphs, err = parseGraphs(opts.Graphs)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", pluginName, err)
		return opts, 2, true
	}
	return opts, 0, false
}

// found is what a source found: targets, warnings, and the containers of
// awsvpc tasks, whose addresses only the ECS agent knows.
type found struct {
	targets  []Target
	awsvpc   []container.Summary
	warnings []string
}

func discover(ctx context.Context, hc httpDoer, opts options) (found, error) {
	if opts.Source == sourceTaskMetadata {
		if opts.TaskMetadataURL == "" {
			return found{}, fmt.Errorf("--source task-metadata: %s is not set and no --task-metadata-url is given; run the plugin in an ECS task (Fargate platform 1.4.0 or later, ECS agent 1.39.0 or later on EC2), such as from mackerel-container-agent", envTaskMetadata)
		}
		s := TaskMetadata{URL: opts.TaskMetadataURL, Names: opts.Names, Labels: opts.Labels, ContainerPort: opts.ContainerPort}
		targets, warnings, err := s.Targets(ctx, hc, opts.Timeout)
		return found{targets: targets, warnings: warnings}, err
	}
	d := Discovery{Names: opts.Names, Labels: opts.Labels, ContainerPort: opts.ContainerPort, Host: opts.Host,
		Address: opts.Address, Network: opts.Network}
	return d.Discover(ctx, opts.DockerHost, opts.Timeout)
}

// scrapeable are the targets whose key renders (the others are skipped, with
// a warning, when keys are assigned), with no key yet.
func scrapeable(tmpl keyTemplate, targets []Target) []keyed {
	var out []keyed
	for _, t := range targets {
		if _, err := tmpl.render(t); err == nil {
			out = append(out, keyed{Target: t})
		}
	}
	return out
}

// withKeys are the results of the keyed targets, in their order, with their
// keys.
func withKeys(scraped []result, keyedTargets []keyed) []result {
	index := make(map[string]int, len(scraped))
	for i, r := range scraped {
		index[r.target.identity()+" "+r.target.Addr()] = i
	}
	results := make([]result, 0, len(keyedTargets))
	for _, k := range keyedTargets {
		if i, ok := index[k.identity()+" "+k.Addr()]; ok {
			r := scraped[i]
			r.key = k.key
			results = append(results, r)
		}
	}
	return results
}

// result is one target's scrape: its values, or why there are none.
type result struct {
	target  Target
	key     string // the task part of its metric keys
	values  map[string]float64
	cause   error // nil when scraped; says what failed, without naming the target
	latency time.Duration
}

// scraper scrapes targets, at most opts.Concurrency at once over all the
// batches it is given.
type scraper struct {
	hc   *http.Client
	opts options
	sem  chan struct{}
}

func newScraper(hc *http.Client, opts options) *scraper {
	return &scraper{hc: hc, opts: opts, sem: make(chan struct{}, opts.Concurrency)}
}

// start starts scraping targets and returns a function that waits for the
// results, in target order. A target still waiting for a slot when ctx ends
// is reported as not scraped.
func (s *scraper) start(ctx context.Context, targets []keyed) (wait func() []result) {
	results := make([]result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case s.sem <- struct{}{}:
				defer func() { <-s.sem }()
			case <-ctx.Done():
			}
			if expired(ctx) {
				results[i] = result{target: t.Target, key: t.key,
					cause: fmt.Errorf("not scraped: %d others still in flight at the deadline (see --concurrency)", s.opts.Concurrency)}
				return
			}
			results[i] = scrape(ctx, s.hc, t.Target, s.opts)
			results[i].key = t.key
		}()
	}
	return func() []result {
		wg.Wait()
		return results
	}
}

// scrapeAll scrapes every target, at most opts.Concurrency at once, and
// returns the results in target order.
func scrapeAll(ctx context.Context, hc *http.Client, targets []keyed, opts options) []result {
	return newScraper(hc, opts).start(ctx, targets)()
}

// expired tells whether ctx has ended, by its deadline on the clock too: a
// connection deadline can fire a moment before ctx.Done is closed.
func expired(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(deadline)
}

func scrape(ctx context.Context, hc *http.Client, t Target, opts options) result {
	start := time.Now()
	values, err := fetch(ctx, hc, t.URL(opts.Scheme, opts.Path), parserFor(opts.Format))
	r := result{target: t, values: values, latency: time.Since(start)}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named by scrapeError
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s", opts.Timeout)
		}
		r.cause = err
	}
	return r
}

func scrapeError(t Target, opts options, err error) error {
	return fmt.Errorf("scrape %s (container %s %s): %w", t.URL(opts.Scheme, opts.Path), t.ContainerName, t.ShortID(), err)
}

func printList(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range results {
		family := r.target.Family
		if family == "" {
			family = "-"
		}
		status := "ok " + r.latency.Round(time.Millisecond/10).String()
		if r.cause != nil {
			status = "error: " + r.cause.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.target.ContainerName, r.target.ShortID(), family, r.target.Addr(), r.key, status)
	}
	tw.Flush()
}

// defaultTempfile is one state file per command line, as
// go-mackerel-plugin-helper names its own: two plugin blocks with different
// filters never share state.
func defaultTempfile(args []string) string {
	sum := sha1.Sum([]byte(strings.Join(args, " ")))
	return filepath.Join(pluginutil.PluginWorkDir(), fmt.Sprintf("%s-%x", pluginName, sum))
}
