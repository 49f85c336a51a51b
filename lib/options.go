package mpecsgostats

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jessevdk/go-flags"
	"github.com/mackerelio/golib/pluginutil"
)

const pluginName = "mackerel-plugin-ecs-gostats"

// Where targets are found (--source).
const (
	sourceDocker       = "docker"        // the Docker daemon's container list on this instance
	sourceTaskMetadata = "task-metadata" // the containers of the task this process runs in
)

type options struct {
	Source           string        `long:"source" default:"docker" description:"where targets are found: the Docker daemon's containers (on an ECS container instance), or the containers of the task the plugin runs in, from the ECS task metadata endpoint (beside mackerel-container-agent, on Fargate or EC2)"`
	DockerHost       string        `short:"H" long:"docker-host" env:"DOCKER_HOST" default:"unix:///var/run/docker.sock" value-name:"ADDR" description:"Docker daemon address (unix:// or tcp://)"`
	ECSAgentURL      string        `long:"ecs-agent-url" default:"http://127.0.0.1:51678" value-name:"URL" description:"the ECS agent's introspection API, asked (once a run) for the addresses of awsvpc tasks when Docker lists any"`
	TaskMetadataURL  string        `long:"task-metadata-url" env:"ECS_CONTAINER_METADATA_URI_V4" default-mask:"-" value-name:"URL" description:"with --source task-metadata: the task metadata endpoint (v4) of the task"`
	Names            []string      `short:"n" long:"name" value-name:"NAME" description:"only containers whose name matches, as docker ps --filter name= (repeatable)"`
	Labels           []string      `short:"l" long:"label" value-name:"KEY[=VALUE]" description:"only containers with this label, as docker ps --filter label= (repeatable)"`
	ContainerPort    uint16        `short:"P" long:"container-port" value-name:"N" description:"the container port to scrape (default: every published TCP port; with --address container-ip, awsvpc tasks and --source task-metadata, every TCP port the container lists)"`
	Host             string        `long:"host" value-name:"ADDR" description:"address to reach the mapped ports (default: the binding's HostIP when specific, else 127.0.0.1, or ::1 for a port published on :: only)"`
	Scheme           string        `long:"scheme" default:"http" choice:"http" choice:"https" description:"scheme of the stats endpoint"`
	Format           string        `long:"format" default:"gostats" description:"what the endpoints serve: golang-stats-api-handler's JSON (gostats), Go's expvar (expvar), client_golang's Prometheus text (prometheus), or decided per target from its answer (auto); a container's gostats.format label wins"`
	Path             string        `short:"p" long:"path" value-name:"PATH" description:"path of the stats endpoint (default: the format's: /stats, /debug/vars, /metrics; with --format auto, probed in that order); a container's gostats.path label wins"`
	OptIn            bool          `long:"opt-in" description:"scrape only containers with a gostats.* label (gostats.scrape=true will do; gostats.service.name alone does not) or the CloudWatch agent's ECS_PROMETHEUS_EXPORTER_PORT label"`
	Timeout          time.Duration `short:"t" long:"timeout" default:"5s" value-name:"DURATION" description:"one deadline for the whole run: finding the targets and every scrape (targets are scraped in parallel)"`
	Concurrency      int           `short:"c" long:"concurrency" default:"128" value-name:"N" description:"scrapes in flight at once"`
	Address          string        `long:"address" default:"host-port" choice:"host-port" choice:"container-ip" description:"how targets are reached: the published host port, or the container's own address and private port (needs no published port; works from inside a container with the Docker socket mounted); awsvpc tasks are reached at their task's address either way"`
	Network          string        `long:"network" value-name:"NAME" description:"with --address container-ip: the Docker network whose address is used (default: the first, by name, that gives the container an IPv4 address)"`
	Prefix           string        `long:"metric-key-prefix" default:"gostats" value-name:"PREFIX" description:"metric key prefix"`
	Key              string        `long:"key" value-name:"TEMPLATE" description:"the task part of every metric key, from {port} {container_port} {family} {revision} {container} {task} {name} {slot}; e.g. '{family}-{slot}' survives deploys (default: {port} with --source docker, {container} with --source task-metadata)"`
	Graphs           string        `long:"graphs" value-name:"LIST" description:"graphs to send, comma-separated, of runtime, memory, operation, heap, gc, objects, allocation (default: all)"`
	Output           string        `long:"output" default:"mackerel" value-name:"LIST" description:"where the tasks' series go, comma-separated: mackerel (metric lines on stdout, for mackerel-agent), otlp (labeled metrics over OTLP/gRPC to --otlp-endpoint; the API key is read from the environment variable MACKEREL_APIKEY, never from a flag); the run's own health lines are printed either way"`
	OTLPEndpoint     string        `long:"otlp-endpoint" value-name:"HOST:PORT" description:"with --output otlp: the OTLP/gRPC endpoint, such as otlp.mackerelio.com:4317 (TLS, verified against the system roots; SSL_CERT_FILE adds a private CA)"`
	OTLPInsecure     bool          `long:"otlp-insecure" description:"with --output otlp: plain text, for a collector on this host or one that adds the API key itself (refused while MACKEREL_APIKEY is set, unless the endpoint is localhost or a loopback address)"`
	ContainerMetrics bool          `long:"container-metrics" description:"also send each scraped container's own CPU, memory, network and disk use (docker stats, or the task metadata's /task/stats), under the key of its target with the lowest container port: graphs container_cpu, container_memory, container_network, container_disk"`
	NoHealth         bool          `long:"no-health" description:"do not print the run's own metrics (PREFIX_scrape.*: targets found, ok and failed, run time, discovery errors)"`
	Tempfile         string        `long:"tempfile" value-name:"PATH" description:"state file for rates (default: one per command line in the plugin work dir)"`
	List             bool          `long:"list" description:"print one line per discovered target and whether it answered, and the containers passed over and why, then exit"`
	Version          bool          `short:"v" long:"version" description:"print the version and exit"`

	format      format      // parsed Format; nil for auto
	formatFrom  string      // "flag" when --format is given, else "default" (--list says which)
	outputs     []string    // parsed Output
	apiKey      string      // $MACKEREL_APIKEY
	keyTemplate keyTemplate // parsed Key
	graphs      graphSet    // parsed Graphs; nil: all
	// otelResourceAttrs is the plugin process's OTEL_RESOURCE_ATTRIBUTES,
	// as run was handed it (parts)
	otelResourceAttrs string
}

var prefixPattern = regexp.MustCompile(`^[-a-zA-Z0-9_]+(\.[-a-zA-Z0-9_]+)*$`)

// parseOptions returns the options, or done with the exit code when the
// run ends here (help, or a usage error already printed).
func parseOptions(parts parts, args []string, stdout, stderr io.Writer) (opts options, code int, done bool) {
	p := flags.NewParser(&opts, flags.HelpFlag|flags.PassDoubleDash)
	p.Name = pluginName
	p.FindOptionByLongName("format").Choices = append(parts.formats.names(), formatAuto)
	var sources []string
	for _, s := range parts.sources {
		sources = append(sources, s.name)
	}
	p.FindOptionByLongName("source").Choices = sources
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
	opts.apiKey = os.Getenv(envAPIKey)
	if opts.DockerHost == "" {
		opts.DockerHost = defaultDockerHost
	}
	opts.format = parts.formats.named(opts.Format) // nil: auto
	opts.formatFrom = "default"
	if o := p.FindOptionByLongName("format"); o.IsSet() && !o.IsSetDefault() {
		opts.formatFrom = "flag"
	}
	pathSet := p.FindOptionByLongName("path").IsSet()
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
	case pathSet && !strings.HasPrefix(opts.Path, "/"):
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
		opts.graphs, err = parseGraphsWith(opts.Graphs, opts.ContainerMetrics)
	}
	if err == nil {
		opts.outputs, err = parseOutputs(opts.Output, parts.outputs)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", pluginName, err)
		return opts, 2, true
	}
	return opts, 0, false
}

// Where the tasks' series go (--output).
const (
	outputMackerel = "mackerel"
	outputOTLP     = "otlp"
)

// tempfile is --tempfile, else one state file per command line, as
// go-mackerel-plugin-helper names its own: two plugin blocks with different
// filters never share state. --list is left out of the command line: it
// reads (never writes) the state of the block it is added to, so it shows
// that block's slots and, with --format auto, what its runs remembered.
func (o options) tempfile(args []string) string {
	if o.Tempfile != "" {
		return o.Tempfile
	}
	args = slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "--list" })
	sum := sha1.Sum([]byte(strings.Join(args, " ")))
	return filepath.Join(pluginutil.PluginWorkDir(), fmt.Sprintf("%s-%x", pluginName, sum))
}
