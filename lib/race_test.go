//go:build race

package mpecsgostats

// raceEnabled tells the tests the race detector is on: it multiplies a
// process's memory (5 to 10 times, as its documentation says), so bounds of
// the plugin's own memory do not hold under it.
const raceEnabled = true
