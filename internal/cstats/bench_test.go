package cstats

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func readBytes(b *testing.B, name string) []byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkDecodeDockerStats: one Docker stats answer (cgroup v1, as
// recorded), decoded and turned into values against the previous run's.
func BenchmarkDecodeDockerStats(b *testing.B) {
	data := readBytes(b, "docker_cpus_half_2.json")
	s1 := readDocker(b, "docker_cpus_half_1.json")
	prev, _ := SampleOf(&s1)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s, err := DecodeDockerStats(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if v, _, ok := DockerValues(&prev, &s); !ok || v.CPU == nil {
			b.Fatal("no CPU")
		}
	}
}

// BenchmarkDecodeTaskStats: a /task/stats answer of four entries (two
// samples, a null and a {}), decoded and turned into values.
func BenchmarkDecodeTaskStats(b *testing.B) {
	data := readBytes(b, "task_stats_v1_awsvpc.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		ts, err := DecodeTaskStats(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range ts {
			TaskValues(nil, e)
		}
	}
}
