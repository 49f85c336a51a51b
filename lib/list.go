package mpecsgostats

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// The --list output: one line per target, with its key, whether it
// answered, and the format and path it was read with and where each came
// from (label, flag, default, probe); with an output that labels series
// (otlp), its service.name and where that came from (label,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, family, container name);
// then the containers passed over and why.

func printList(w io.Writer, r *report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, res := range r.results {
		family := res.target.Family
		if family == "" {
			family = "-"
		}
		status := "ok " + res.latency.Round(time.Millisecond/10).String()
		if res.cause != nil {
			status = "error: " + res.cause.Error()
		}
		addr := res.target.Addr()
		if res.target.Port == 0 {
			addr = "-"
		}
		read := "-"
		if res.how.format != nil {
			read = fmt.Sprintf("%s (%s) at %s (%s)", res.how.format.name(), res.how.formatFrom, res.how.path, res.how.pathFrom)
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", res.target.ContainerName, res.target.ShortID(), family, addr, res.key, status, read)
		if r.containerMetrics {
			line += "\t" + statsStatus(r.containers.byID(res.target.ContainerID))
		}
		if r.labels {
			s := r.service(res.target)
			line += fmt.Sprintf("\tservice.name=%s (%s)", s.name, s.from)
		}
		fmt.Fprintln(tw, line)
	}
	for _, p := range r.passed {
		fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\tpassed over: %s\n", p.name, shortID(p.id), p.why)
	}
	return tw.Flush()
}

// statsStatus is what --list says of a container's stats: "stats ok", or
// "stats: <error>".
func statsStatus(c *containerResult) string {
	switch {
	case c == nil:
		return "stats: not asked"
	case c.err != nil:
		return "stats: " + c.err.Error()
	}
	return "stats ok"
}
