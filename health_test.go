package main

// Integration tests of the health metrics: the run's own figures
// (gostats_scrape.*), printed by the built binary over the shared tasks, on
// a failed discovery, and posted by a real mackerel-agent.

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// healthPrefix is the first part of every health metric key with the
// default --metric-key-prefix.
const healthPrefix = "gostats_scrape."

// healthMetrics are the health metrics, in the order the plugin prints them
// after the task lines. The monitors example may name only these.
var healthMetrics = []string{"targets.found", "targets.ok", "targets.failed", "run.seconds", "discovery.errors"}

// isHealthKey tells a health metric key, as printed or as mackerel-agent
// posts it (custom.gostats_scrape.*), from a task key.
func isHealthKey(key string) bool {
	return strings.HasPrefix(strings.TrimPrefix(key, "custom."), healthPrefix)
}

// withoutHealth is m less its health metrics: what the tests of task keys
// compare.
func withoutHealth(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if !isHealthKey(k) {
			out[k] = v
		}
	}
	return out
}

// health is the health figures of a run; run.seconds is checked apart.
type health struct{ found, ok, failed, discoveryErrors int }

// assertHealth checks that m (keys as printed, or with prefix "custom." as
// posted) holds exactly the five health metrics, with the figures of want
// and run.seconds above 0 and below limit. It returns run.seconds.
func assertHealth(t *testing.T, m map[string]float64, prefix string, want health, limit time.Duration) float64 {
	t.Helper()
	var got []string
	for k := range m {
		if isHealthKey(k) {
			got = append(got, k)
		}
	}
	slices.Sort(got)
	var keys []string
	for _, h := range healthMetrics {
		keys = append(keys, prefix+healthPrefix+h)
	}
	if wantKeys := slices.Sorted(slices.Values(keys)); !slices.Equal(got, wantKeys) {
		t.Errorf("health keys\n got  %q\n want %q", got, wantKeys)
	}
	for i, v := range []int{want.found, want.ok, want.failed, -1, want.discoveryErrors} {
		if v >= 0 && m[keys[i]] != float64(v) {
			t.Errorf("%s = %f, want %d", keys[i], m[keys[i]], v)
		}
	}
	secs := m[prefix+healthPrefix+"run.seconds"]
	if secs <= 0 || secs >= limit.Seconds() {
		t.Errorf("run.seconds = %f, want above 0 and below %s", secs, limit)
	}
	return secs
}

// assertOnlyHealth checks that stdout is the five health lines and nothing
// else, in their order, with the figures of want.
func assertOnlyHealth(t *testing.T, stdout string, want health, limit time.Duration) {
	t.Helper()
	var keys []string
	for _, l := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		keys = append(keys, strings.Split(l, "\t")[0])
	}
	var wantKeys []string
	for _, h := range healthMetrics {
		wantKeys = append(wantKeys, healthPrefix+h)
	}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("stdout keys %q, want %q; stdout:\n%s", keys, wantKeys, stdout)
	}
	assertHealth(t, parseMetrics(t, stdout), "", want, limit)
}
