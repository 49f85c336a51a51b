package mpecsgostats

import (
	"fmt"
	"testing"
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
