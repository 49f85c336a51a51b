package mpecsgostats

import (
	"fmt"
	"strconv"
	"strings"
)

// Per-container settings from the container's labels: the task
// definition's dockerLabels, which reach the plugin as Docker labels and in
// the task metadata's Labels alike. For its container a label wins over the
// corresponding flag; the flags stay the defaults for unlabelled containers.

const (
	labelPort   = "gostats.port"   // the container port to scrape, the only one
	labelPath   = "gostats.path"   // the path of the stats endpoint
	labelFormat = "gostats.format" // gostats, expvar or prometheus: no probing
	labelScrape = "gostats.scrape" // false: never scraped; true: opted in (--opt-in)

	// The CloudWatch agent's labels for Prometheus exporters: port (and
	// path, default /metrics) with format prometheus.
	labelPromPort = "ECS_PROMETHEUS_EXPORTER_PORT"
	labelPromPath = "ECS_PROMETHEUS_METRICS_PATH"
)

// settings are what a container's labels say.
type settings struct {
	optedOut bool   // gostats.scrape=false
	optedIn  bool   // gostats.scrape=true, another gostats.* label (but gostats.service.name), or the CloudWatch labels
	port     uint16 // 0: every port the flags select
	path     string // "": the flag's
	format   format // nil: the flag's
	err      error  // a bad value: the container is a failed target, the others are unaffected
}

// labelSettings reads a container's labels. The gostats.* labels win over
// the CloudWatch ones.
func labelSettings(labels map[string]string, formats formatList) settings {
	var s settings
	if v, ok := labels[labelPromPort]; ok {
		s.optedIn, s.format, s.path = true, formats.named("prometheus"), "/metrics"
		s.port, s.err = labelPortValue(labelPromPort, v)
		if p, ok := labels[labelPromPath]; ok && s.err == nil {
			s.path, s.err = labelPathValue(labelPromPath, p)
		}
	}
	for k := range labels {
		if strings.HasPrefix(k, "gostats.") && k != labelServiceName { // naming a service is no opt-in
			s.optedIn = true
		}
	}
	if v, ok := labels[labelPort]; ok && s.err == nil {
		s.port, s.err = labelPortValue(labelPort, v)
	}
	if v, ok := labels[labelPath]; ok && s.err == nil {
		s.path, s.err = labelPathValue(labelPath, v)
	}
	if v, ok := labels[labelFormat]; ok && s.err == nil {
		s.format = formats.named(v)
		if s.format == nil {
			s.err = fmt.Errorf("label %s=%q: unknown format; use one of %s", labelFormat, v, strings.Join(formats.names(), ", "))
		}
	}
	if v, ok := labels[labelScrape]; ok && s.err == nil {
		switch v {
		case "false":
			s.optedOut, s.optedIn = true, false
		case "true":
		default:
			s.err = fmt.Errorf("label %s=%q: use true or false", labelScrape, v)
		}
	}
	return s
}

func labelPortValue(label, v string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("label %s=%q: not a port number; set it to the container port that serves the stats, such as 8080", label, v)
	}
	return uint16(n), nil
}

func labelPathValue(label, v string) (string, error) {
	if !strings.HasPrefix(v, "/") {
		return "", fmt.Errorf("label %s=%q: a path starts with /, such as /metrics", label, v)
	}
	return v, nil
}

// selected tells whether a container with these settings is scraped, and
// why not: opted out, or not opted in under --opt-in.
func (s settings) selected(optIn bool) (ok bool, why string) {
	switch {
	case s.optedOut:
		return false, "opted out (label " + labelScrape + "=false)"
	case optIn && !s.optedIn:
		return false, "not opted in (--opt-in: no gostats.* or " + labelPromPort + " label)"
	}
	return true, ""
}
