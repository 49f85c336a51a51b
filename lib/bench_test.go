package mpecsgostats

import (
	"fmt"
	"io"
	"testing"
	"time"
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

// BenchmarkReport turns 30 tasks' values into lines and the next state, as
// one run does.
func BenchmarkReport(b *testing.B) {
	var results []result
	for i := 0; i < 30; i++ {
		results = append(results, result{target: Target{ContainerID: fmt.Sprint(i), PrivatePort: 8080}, key: fmt.Sprint(32768 + i), values: allValues()})
	}
	now := time.Unix(1795613637, 0)
	_, last := report("gostats", results, state{}, now.Add(-time.Minute))
	b.ReportAllocs()
	for b.Loop() {
		report("gostats", results, last, now)
	}
}

func BenchmarkTargetsFrom(b *testing.B) {
	cs := loadContainers(b, "containers.json")
	b.ReportAllocs()
	for b.Loop() {
		Discovery{}.targetsFrom(cs)
	}
}

// BenchmarkPrintValues prints the values of 1000 tasks, as a run does after
// scraping.
func BenchmarkPrintValues(b *testing.B) {
	var results []result
	for i := 0; i < 1000; i++ {
		results = append(results, result{target: Target{ContainerID: fmt.Sprint(i), PrivatePort: 8080}, key: fmt.Sprint(10000 + i), values: allValues()})
	}
	now := time.Unix(1795613637, 0)
	_, last := report("gostats", results, state{}, now.Add(-time.Minute))
	b.ReportAllocs()
	for b.Loop() {
		lines, _ := report("gostats", results, last, now)
		printValues(io.Discard, lines)
	}
}
