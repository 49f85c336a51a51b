package mpecsgostats

import (
	"context"
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

// BenchmarkRates computes 30 tasks' rates and the next state, as one run
// does.
func BenchmarkRates(b *testing.B) {
	var results []result
	for i := 0; i < 30; i++ {
		results = append(results, result{target: target{ContainerID: fmt.Sprint(i), PrivatePort: 8080}, key: fmt.Sprint(32768 + i), values: allValues()})
	}
	now := time.Unix(1795613637, 0)
	_, last := rates(results, state{}, now.Add(-time.Minute))
	b.ReportAllocs()
	for b.Loop() {
		rates(results, last, now)
	}
}

func BenchmarkTargetsFrom(b *testing.B) {
	cs := loadContainers(b, "containers.json")
	b.ReportAllocs()
	for b.Loop() {
		dockerSource{}.targetsFrom(cs)
	}
}

// BenchmarkMackerelOutput prints the values of 1000 tasks, as a run does
// after scraping.
func BenchmarkMackerelOutput(b *testing.B) {
	var results []result
	for i := 0; i < 1000; i++ {
		results = append(results, result{target: target{ContainerID: fmt.Sprint(i), PrivatePort: 8080}, key: fmt.Sprint(10000 + i), values: allValues()})
	}
	now := time.Unix(1795613637, 0)
	_, last := rates(results, state{}, now.Add(-time.Minute))
	out := mackerelOutput{w: io.Discard, prefix: "gostats"}
	hw := healthWriter{w: io.Discard, prefix: "gostats"}
	b.ReportAllocs()
	for b.Loop() {
		r := report{time: now, results: results}
		reported, _ := rates(r.results, last, now)
		for i := range r.results {
			r.results[i].reported = reported[i]
		}
		out.write(context.Background(), &r)
		hw.write(now, r.health)
	}
}
