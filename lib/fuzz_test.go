package mpecsgostats

import (
	"encoding/json"
	"testing"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"
)

// FuzzParseStats: any body gives values or an error, never a panic, and
// only known keys.
func FuzzParseStats(f *testing.F) {
	for _, name := range []string{"stats.json", "stats_pretty.json", "stats_gc.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`{"goroutine_num": null}`))
	f.Add([]byte(`{"memory_sys": 1e400}`))
	// the handler's fields, and the two hidden ones only OTLP sends
	known := map[string]bool{"gc._next_gc": true, "runtime._gomaxprocs": true}
	for _, m := range metrics() {
		if !m.def().hidden {
			known[m.key()] = true
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		values, err := parseStats(body)
		checkParsed(t, byKey(values), err, func(k string) bool { return known[k] })
	})
}

// checkParsed is what any parse of any body must give: values or an error,
// not both, not neither, and only keys known says it may.
func checkParsed(t *testing.T, values map[string]float64, err error, known func(key string) bool) {
	t.Helper()
	if err != nil {
		if values != nil {
			t.Errorf("values %v with error %v", values, err)
		}
		return
	}
	if len(values) == 0 {
		t.Error("no values and no error")
	}
	for k := range values {
		if !known(k) {
			t.Errorf("unexpected key %q", k)
		}
	}
}

// FuzzTargetsFrom: any /containers/json answer gives targets with distinct,
// published host ports and a host to reach them, never a panic; with and
// without --container-port and --host.
func FuzzTargetsFrom(f *testing.F) {
	f.Add([]byte(`[{"Id":"d01217798a9a","Names":["/ecs-api-7-api"],"Labels":{"com.amazonaws.ecs.task-definition-family":"api"},"Ports":[{"IP":"0.0.0.0","PrivatePort":8080,"PublicPort":32771,"Type":"tcp"},{"IP":"::","PrivatePort":8080,"PublicPort":32771,"Type":"tcp"},{"IP":"0.0.0.0","PrivatePort":9090,"PublicPort":32770,"Type":"tcp"},{"IP":"127.0.0.2","PrivatePort":8125,"PublicPort":32768,"Type":"udp"}]}]`))
	f.Add(readTestdata(f, "containers.json"))
	f.Add([]byte(`[{"Id":"x","Ports":[{"IP":"not-an-ip","PrivatePort":1,"PublicPort":2,"Type":"tcp"}]}]`))
	f.Fuzz(func(t *testing.T, answer []byte) {
		var cs []engineapi.Summary
		if json.Unmarshal(answer, &cs) != nil {
			return
		}
		for _, d := range []dockerSource{{}, {ContainerPort: 8080, HostAddr: "::1"}} {
			targets := d.targetsFrom(cs).targets
			seen := map[uint16]bool{}
			for _, tg := range targets {
				if tg.HostPort == 0 || seen[tg.HostPort] {
					t.Errorf("host port %d twice or unpublished: %+v", tg.HostPort, targets)
				}
				seen[tg.HostPort] = true
				if tg.Host == "" || (d.HostAddr != "" && tg.Host != d.HostAddr) {
					t.Errorf("host %q with --host %q", tg.Host, d.HostAddr)
				}
				if d.ContainerPort != 0 && tg.PrivatePort != d.ContainerPort {
					t.Errorf("private port %d with --container-port %d", tg.PrivatePort, d.ContainerPort)
				}
			}
		}
	})
}
