package mpecsgostats

import (
	"context"
	"sync"
)

// Measure: every kind of measurement of the keyed targets, side by side
// under the same deadline. The Go runtime's scrape (scrape.go) is one kind;
// another kind (such as each container's own resource use, from the
// source's API) is one more field of measurements and one more goroutine
// here, and never waits for or depends on the scrape.

// measurements are what the kinds measured, each in its own shape.
type measurements struct {
	runtime    []result              // the Go runtime of each target, in target order
	containers containerMeasurements // each container's own use (containers.go); none without a meter
	services   serviceLookups        // each container's service identity (serviceid.go); none without a lookup
}

// measure runs the kinds at once and returns when all are done; each ends
// at ctx's deadline. cm is nil when the containers are not measured, sl
// when their environment is not read.
func measure(ctx context.Context, sc scraper, cm *containerMeter, sl *serviceLookup, targets []keyed) measurements {
	var m measurements
	var wg sync.WaitGroup
	wg.Go(func() { m.runtime = sc.scrape(ctx, targets) })
	if cm != nil {
		wg.Go(func() { m.containers = cm.measure(ctx, targets) })
	}
	if sl != nil {
		wg.Go(func() { m.services = sl.lookup(ctx, targets) })
	}
	wg.Wait()
	return m
}
