// Package mpecsgostats is a mackerel-agent plugin that reports the
// golang-stats-api-handler stats of every Go task on an ECS container
// instance, found through the Docker Engine API.
package mpecsgostats

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jessevdk/go-flags"
	mp "github.com/mackerelio/go-mackerel-plugin-helper"
	"github.com/mackerelio/golib/pluginutil"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

const pluginName = "mackerel-plugin-ecs-gostats"

type options struct {
	DockerHost    string        `short:"H" long:"docker-host" env:"DOCKER_HOST" default:"unix:///var/run/docker.sock" value-name:"ADDR" description:"Docker daemon address (unix:// or tcp://)"`
	Names         []string      `short:"n" long:"name" value-name:"NAME" description:"only containers whose name matches, as docker ps --filter name= (repeatable)"`
	Labels        []string      `short:"l" long:"label" value-name:"KEY[=VALUE]" description:"only containers with this label, as docker ps --filter label= (repeatable)"`
	ContainerPort uint16        `short:"P" long:"container-port" value-name:"N" description:"private port whose host mapping is scraped (default: every published TCP port)"`
	Host          string        `long:"host" value-name:"ADDR" description:"address to reach the mapped ports (default: the binding's HostIP when specific, else 127.0.0.1, or ::1 for a port published on :: only)"`
	Scheme        string        `long:"scheme" default:"http" choice:"http" choice:"https" description:"scheme of the stats endpoint"`
	Path          string        `short:"p" long:"path" default:"/stats" value-name:"PATH" description:"path of the stats endpoint"`
	Timeout       time.Duration `short:"t" long:"timeout" default:"5s" value-name:"DURATION" description:"per-target timeout; targets are scraped at once, so it also bounds the run"`
	Concurrency   int           `short:"c" long:"concurrency" default:"128" value-name:"N" description:"scrapes in flight at once"`
	Prefix        string        `long:"metric-key-prefix" default:"gostats" value-name:"PREFIX" description:"metric key prefix"`
	Tempfile      string        `long:"tempfile" value-name:"PATH" description:"state file for rates (default: one per command line in the plugin work dir)"`
	List          bool          `long:"list" description:"print one line per discovered target and whether it answered, then exit"`
	Version       bool          `short:"v" long:"version" description:"print the version and exit"`
}

// Do runs the plugin with the process's arguments and returns the exit code.
func Do(version string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], version, os.Stdout, os.Stderr)
}

// Run parses args and does one run: discover, scrape, print. Metric lines
// and graph definitions go to the process's stdout (the helper prints
// them); --help, --version and --list go to stdout, warnings to stderr.
func Run(ctx context.Context, args []string, version string, stdout, stderr io.Writer) int {
	opts, code, done := parseOptions(args, stdout, stderr)
	if done {
		return code
	}
	if opts.Version {
		fmt.Fprintf(stdout, "%s %s\n", pluginName, version)
		return 0
	}
	if os.Getenv("MACKEREL_AGENT_PLUGIN_META") != "" {
		h := mp.NewMackerelPlugin(plugin{prefix: opts.Prefix})
		h.OutputDefinitions()
		return 0
	}

	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	targets, warnings, err := discover(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", pluginName, err)
		return 1
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	results := scrapeAll(ctx, newHTTPClient(opts.Timeout), targets, opts)
	if opts.List {
		printList(stdout, results)
		return 0
	}
	for _, r := range results {
		if r.err != nil {
			fmt.Fprintf(stderr, "warning: %v\n", r.err)
		}
	}

	tempfile := opts.Tempfile
	if tempfile == "" {
		tempfile = defaultTempfile(args)
	}
	rates, err := prepareState(tempfile, opts.Prefix, results, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "warning: %v\n", err)
	}
	h := mp.NewMackerelPlugin(plugin{prefix: opts.Prefix, results: results, perPort: true, noRates: !rates})
	h.Tempfile = tempfile
	h.OutputValues()
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
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", pluginName, err)
		return opts, 2, true
	}
	return opts, 0, false
}

func discover(ctx context.Context, opts options) ([]Target, []string, error) {
	d := Discovery{Names: opts.Names, Labels: opts.Labels, ContainerPort: opts.ContainerPort, Host: opts.Host}
	return d.Discover(ctx, opts.DockerHost, opts.Timeout)
}

// result is one target's scrape: its values, or the error naming it.
type result struct {
	target  Target
	values  map[string]float64
	err     error
	latency time.Duration
}

// scrapeAll scrapes every target, at most opts.Concurrency at once, and
// returns the results in target order. A target still waiting for a slot
// when ctx ends is reported as not scraped.
func scrapeAll(ctx context.Context, hc *http.Client, targets []Target, opts options) []result {
	results := make([]result, len(targets))
	sem := make(chan struct{}, opts.Concurrency)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
			}
			if expired(ctx) {
				err := fmt.Errorf("not scraped: %d others still in flight at the deadline (see --concurrency)", opts.Concurrency)
				results[i] = result{target: t, err: scrapeError(t, opts, err)}
				return
			}
			results[i] = scrape(ctx, hc, t, opts)
		}()
	}
	wg.Wait()
	return results
}

// expired tells whether ctx has ended, by its deadline on the clock too: a
// connection deadline can fire a moment before ctx.Done is closed.
func expired(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(deadline)
}

func scrape(ctx context.Context, hc *http.Client, t Target, opts options) result {
	start := time.Now()
	values, err := fetchStats(ctx, hc, t.URL(opts.Scheme, opts.Path))
	r := result{target: t, values: values, latency: time.Since(start)}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named by scrapeError
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s", opts.Timeout)
		}
		r.err = scrapeError(t, opts, err)
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
		if r.err != nil {
			status = "error: " + errors.Unwrap(r.err).Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.target.ContainerName, r.target.ShortID(), family, r.target.Addr(), status)
	}
	tw.Flush()
}

// defaultTempfile is one state file per command line, as the helper names
// its own: two plugin blocks with different filters never share state.
func defaultTempfile(args []string) string {
	sum := sha1.Sum([]byte(strings.Join(args, " ")))
	return filepath.Join(pluginutil.PluginWorkDir(), fmt.Sprintf("%s-%x", pluginName, sum))
}

// graphDefs are the graphs of each task, in the order README lists them.
var graphDefs = []struct{ name, label, unit string }{
	{"runtime", "Runtime", "integer"},
	{"memory", "Memory", "bytes"},
	{"operation", "Operation", "integer"},
	{"heap", "Heap", "bytes"},
	{"gc", "GC", "float"},
	{"objects", "Heap Objects", "integer"},
	{"allocation", "Allocation", "bytes"},
}

// metricDef is one reported metric; name is also its JSON field in the
// golang-stats-api-handler response. Diff metrics are counters reported as
// per-minute rates by the helper.
type metricDef struct {
	graph, name, label string
	diff               bool
}

func (m metricDef) key() string { return m.graph + "." + m.name }

// metricDefs: the first 15 are mackerel-plugin-gostats' metrics under the
// same names (heap_released is a gauge here); the last two are additions.
var metricDefs = []metricDef{
	{"runtime", "goroutine_num", "Goroutine Num", false},
	{"runtime", "cgo_call_num", "CGO Call Num", true},
	{"memory", "memory_alloc", "Alloc", false},
	{"memory", "memory_sys", "Sys", false},
	{"memory", "memory_stack", "Stack In Use", false},
	{"operation", "memory_lookups", "Pointer Lookups", true},
	{"operation", "memory_mallocs", "Mallocs", true},
	{"operation", "memory_frees", "Frees", true},
	{"heap", "heap_sys", "Sys", false},
	{"heap", "heap_idle", "Idle", false},
	{"heap", "heap_inuse", "In Use", false},
	{"heap", "heap_released", "Released", false},
	{"gc", "gc_num", "GC Num", true},
	{"gc", "gc_per_second", "GC Per Second", false},
	{"gc", "gc_pause_per_second", "GC Pause Per Second", false},
	{"objects", "heap_objects", "Objects", false},
	{"allocation", "memory_total_alloc", "Allocated Bytes / min", true},
}

// plugin is what the helper prints: the scraped results as
// "<prefix>.<hostport>.<graph>.<metric>" values and wildcard graphs keyed
// "<prefix>.#.<graph>".
type plugin struct {
	prefix  string
	results []result
	perPort bool // graphs per scraped port, for printing values (see GraphDefinition)
	noRates bool // leave out the diff metrics, and so the state file
}

// containersKey holds, in the helper's state, which container served each
// host port; it matches no graph, so it is saved but never printed.
const containersKey = "_containers"

func (p plugin) FetchMetrics() (map[string]interface{}, error) {
	values := map[string]interface{}{}
	containers := map[string]interface{}{}
	for _, r := range p.results {
		if r.err != nil {
			continue
		}
		port := strconv.Itoa(int(r.target.HostPort))
		containers[port] = r.target.ContainerID
		for k, v := range r.values {
			values[p.prefix+"."+port+"."+k] = v
		}
	}
	values[containersKey] = containers
	return values, nil
}

// GraphDefinition is the wildcard graphs "<prefix>.#.<graph>" (meta mode).
// With perPort it is the same graphs for each scraped port instead, with
// absolute metric names: the helper then looks each key up, where with
// wildcards it matches every key against every metric's regexp, the largest
// cost of a run with many tasks. The keys printed are the same.
func (p plugin) GraphDefinition() map[string]mp.Graphs {
	ports := []string{"#"}
	if p.perPort {
		ports = ports[:0]
		for _, r := range p.results {
			if r.err == nil {
				ports = append(ports, strconv.Itoa(int(r.target.HostPort)))
			}
		}
	}
	labelPrefix := cases.Title(language.Und, cases.NoLower).String(p.prefix)
	graphs := make(map[string]mp.Graphs, len(graphDefs)*len(ports))
	for _, g := range graphDefs {
		var metrics []mp.Metrics
		for _, m := range metricDefs {
			if m.graph == g.name && !(m.diff && p.noRates) {
				metrics = append(metrics, mp.Metrics{Name: m.name, Label: m.label, Diff: m.diff, AbsoluteName: p.perPort})
			}
		}
		graph := mp.Graphs{Label: labelPrefix + " " + g.label, Unit: g.unit, Metrics: metrics}
		for _, port := range ports {
			graphs[p.prefix+"."+port+"."+g.name] = graph
		}
	}
	return graphs
}

// prepareState readies the helper's state file for this run and tells
// whether rates can be reported. Not when the file cannot be written (the
// helper would exit on saving it) or when another run saved it less than a
// second ago (the helper would then print nothing at all): gauges are still
// reported. A missing or corrupt state is left to the helper, which replaces
// it. The counters of ports now served by another container are forgotten.
func prepareState(path, prefix string, results []result, now time.Time) (rates bool, err error) {
	if err := checkWritable(path); err != nil {
		return false, fmt.Errorf("rates left out: state file not writable: %w", err)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("rates left out: %w", err)
	}
	var head struct {
		LastTime   *float64          `json:"_lastTime"`
		Containers map[string]string `json:"_containers"`
	}
	if json.Unmarshal(b, &head) != nil {
		return true, nil
	}
	if head.LastTime != nil && now.Sub(time.Unix(int64(*head.LastTime), 0)) < time.Second {
		return false, fmt.Errorf("rates left out: another run saved %s less than a second ago", path)
	}
	replaced := replacedPorts(head.Containers, results)
	if len(replaced) == 0 {
		return true, nil
	}
	var state map[string]interface{}
	if json.Unmarshal(b, &state) != nil {
		return true, nil
	}
	forget(state, prefix, replaced)
	if err := writeFileAtomic(path, state); err != nil {
		return false, fmt.Errorf("rates left out: %w", err)
	}
	return true, nil
}

func checkWritable(path string) error {
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	if errors.Is(statErr, fs.ErrNotExist) {
		os.Remove(path)
	}
	return nil
}

// replacedPorts are the host ports now served by another container than at
// the last run: a new task's counters start again from zero, and a rate
// across two tasks is a lie.
func replacedPorts(last map[string]string, results []result) []string {
	var ports []string
	for _, r := range results {
		port := strconv.Itoa(int(r.target.HostPort))
		if was, ok := last[port]; ok && r.err == nil && was != r.target.ContainerID {
			ports = append(ports, port)
		}
	}
	return ports
}

// forget drops the ports' values from the state: the helper then finds no
// last value for them and skips their rates once.
func forget(state map[string]interface{}, prefix string, ports []string) {
	for _, port := range ports {
		portPrefix := prefix + "." + port + "."
		for k := range state {
			if strings.HasPrefix(k, portPrefix) || strings.HasPrefix(k, ".last_diff."+portPrefix) {
				delete(state, k)
			}
		}
	}
}

func writeFileAtomic(path string, v interface{}) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write state %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state %s: %w", tmp.Name(), err)
	}
	return os.Rename(tmp.Name(), path)
}
