package mpecsgostats

import (
	"maps"
	"reflect"
	"testing"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"
)

func TestLabelSettings(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   settings
		err    string
	}{
		{"no label", map[string]string{"com.amazonaws.ecs.container-name": "web"}, settings{}, ""},
		{"a second stats port", map[string]string{"gostats.port": "9090"}, settings{optedIn: true, port: 9090}, ""},
		{"path", map[string]string{"gostats.path": "/internal/stats"}, settings{optedIn: true, path: "/internal/stats"}, ""},
		{"format", map[string]string{"gostats.format": "expvar"}, settings{optedIn: true, format: expvarFormat{}}, ""},
		{"opted out", map[string]string{"gostats.scrape": "false"}, settings{optedOut: true}, ""},
		{"opted in", map[string]string{"gostats.scrape": "true"}, settings{optedIn: true}, ""},
		{"CloudWatch port", map[string]string{"ECS_PROMETHEUS_EXPORTER_PORT": "9100"},
			settings{optedIn: true, port: 9100, format: prometheusFormat{}, path: "/metrics"}, ""},
		{"CloudWatch port and path", map[string]string{"ECS_PROMETHEUS_EXPORTER_PORT": "9100", "ECS_PROMETHEUS_METRICS_PATH": "/prom"},
			settings{optedIn: true, port: 9100, format: prometheusFormat{}, path: "/prom"}, ""},
		{"gostats.* wins over CloudWatch", map[string]string{"ECS_PROMETHEUS_EXPORTER_PORT": "9100", "gostats.port": "8080", "gostats.format": "gostats", "gostats.path": "/stats"},
			settings{optedIn: true, port: 8080, format: gostatsFormat{}, path: "/stats"}, ""},
		{"port not a number", map[string]string{"gostats.port": "http"}, settings{}, `label gostats.port="http": not a port number; set it to the container port that serves the stats, such as 8080`},
		{"port out of range", map[string]string{"gostats.port": "70000"}, settings{}, `label gostats.port="70000": not a port number; set it to the container port that serves the stats, such as 8080`},
		{"CloudWatch port 0", map[string]string{"ECS_PROMETHEUS_EXPORTER_PORT": "0"}, settings{}, `label ECS_PROMETHEUS_EXPORTER_PORT="0": not a port number; set it to the container port that serves the stats, such as 8080`},
		{"unknown format", map[string]string{"gostats.format": "json"}, settings{}, `label gostats.format="json": unknown format; use one of gostats, prometheus, expvar`},
		{"path without /", map[string]string{"gostats.path": "metrics"}, settings{}, `label gostats.path="metrics": a path starts with /, such as /metrics`},
		{"scrape neither true nor false", map[string]string{"gostats.scrape": "no"}, settings{}, `label gostats.scrape="no": use true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := labelSettings(tt.labels, testFormats)
			if tt.err != "" {
				if got.err == nil || got.err.Error() != tt.err {
					t.Errorf("error %v\nwant %s", got.err, tt.err)
				}
				return
			}
			if got.err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestLabelledDockerTargets: the labels of the real capture's containers
// choose their ports, path and format, on the Docker source in both
// address modes.
func TestLabelledDockerTargets(t *testing.T) {
	containers := loadContainers(t, "containers.json")
	api := containers[5] // ecs-api-7-api: 8080 and 9090 published
	if containerName(api) != "ecs-api-7-api-9a8b7c6d5e4f3a2b1c01" {
		t.Fatalf("capture changed: %s", containerName(api))
	}
	with := func(labels map[string]string) []engineapi.Summary {
		c := api
		c.Labels = maps.Clone(api.Labels)
		maps.Copy(c.Labels, labels)
		return []engineapi.Summary{c}
	}
	type got struct {
		addr, path, format, err string
	}
	tests := []struct {
		name     string
		d        dockerSource
		cs       []engineapi.Summary
		want     []got
		passedBy string
	}{
		{"unlabelled: every published port", dockerSource{}, with(nil),
			[]got{{"127.0.0.1:32770", "", "", ""}, {"127.0.0.1:32771", "", "", ""}}, ""},
		{"gostats.port: that one only", dockerSource{}, with(map[string]string{"gostats.port": "9090", "gostats.path": "/debug/vars", "gostats.format": "expvar"}),
			[]got{{"127.0.0.1:32770", "/debug/vars", "expvar", ""}}, ""},
		{"gostats.port wins over --container-port", dockerSource{ContainerPort: 8080}, with(map[string]string{"gostats.port": "9090"}),
			[]got{{"127.0.0.1:32770", "", "", ""}}, ""},
		{"gostats.port not published", dockerSource{}, with(map[string]string{"gostats.port": "6060"}),
			[]got{{"-", "", "", "label gostats.port=6060: the container does not publish container port 6060, and targets are reached at their published host port; publish it (portMappings), or use --address container-ip"}}, ""},
		{"gostats.port not published, container-ip", dockerSource{Address: addressContainerIP}, with(map[string]string{"gostats.port": "6060"}),
			[]got{{"172.17.0.3:6060", "", "", ""}}, ""},
		{"a bad label", dockerSource{}, with(map[string]string{"gostats.format": "json"}),
			[]got{{"-", "", "", `label gostats.format="json": unknown format; use one of gostats, prometheus, expvar`}}, ""},
		{"opted out", dockerSource{}, with(map[string]string{"gostats.scrape": "false"}), nil, "opted out (label gostats.scrape=false)"},
		{"--opt-in, no label", dockerSource{OptIn: true}, with(nil), nil, "not opted in (--opt-in: no gostats.* or ECS_PROMETHEUS_EXPORTER_PORT label)"},
		{"--opt-in, CloudWatch label", dockerSource{OptIn: true}, with(map[string]string{"ECS_PROMETHEUS_EXPORTER_PORT": "8080"}),
			[]got{{"127.0.0.1:32771", "/metrics", "prometheus", ""}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.d.formats = testFormats
			f := tt.d.targetsFrom(tt.cs)
			var gots []got
			for _, tg := range f.targets {
				g := got{tg.Addr(), tg.Path, "", ""}
				if tg.format != nil {
					g.format = tg.format.name()
				}
				if tg.bad != nil {
					g.addr, g.err = "-", tg.bad.Error()
				}
				gots = append(gots, g)
			}
			if !reflect.DeepEqual(gots, tt.want) {
				t.Errorf("targets\n got %+v\nwant %+v", gots, tt.want)
			}
			var passed string
			if len(f.passed) > 0 {
				passed = f.passed[0].why
			}
			if passed != tt.passedBy || len(f.passed) > 1 {
				t.Errorf("passed over: %+v, want %q", f.passed, tt.passedBy)
			}
			if len(f.warnings) > 0 {
				t.Errorf("warnings %q", f.warnings)
			}
		})
	}
}
