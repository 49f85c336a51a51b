package mpecsgostats

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	mp "github.com/mackerelio/go-mackerel-plugin-helper"
)

func BenchmarkParseStats(b *testing.B) {
	body := readTestdata(b, "stats_gc.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := parseStats(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetchMetrics builds the keys of 30 tasks, as one run does.
func BenchmarkFetchMetrics(b *testing.B) {
	var results []result
	for i := 0; i < 30; i++ {
		results = append(results, result{target: Target{ContainerID: fmt.Sprint(i), HostPort: uint16(32768 + i)}, values: allValues()})
	}
	p := plugin{prefix: "gostats", results: results}
	b.ReportAllocs()
	for b.Loop() {
		p.FetchMetrics()
	}
}

func BenchmarkTargetsFrom(b *testing.B) {
	cs := loadContainers(b, "containers.json")
	b.ReportAllocs()
	for b.Loop() {
		Discovery{}.targetsFrom(cs)
	}
}

// BenchmarkOutputValues prints the values of 1000 tasks through the helper,
// as a run does after scraping (stdout discarded).
func BenchmarkOutputValues(b *testing.B) {
	var results []result
	for i := 0; i < 1000; i++ {
		results = append(results, result{target: Target{ContainerID: fmt.Sprint(i), HostPort: uint16(10000 + i)}, values: allValues()})
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	orig := os.Stdout
	os.Stdout = devnull
	defer func() { os.Stdout = orig }()
	state := filepath.Join(b.TempDir(), "state")
	b.ReportAllocs()
	for b.Loop() {
		os.Remove(state)
		h := mp.NewMackerelPlugin(plugin{prefix: "gostats", results: results, perPort: true, noRates: true})
		h.Tempfile = state
		h.OutputValues()
	}
}
