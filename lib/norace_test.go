//go:build !race

package mpecsgostats

// raceEnabled tells the tests the race detector is on (race_test.go).
const raceEnabled = false
