package mpecsgostats

import (
	"context"
	"errors"
	"sync"
)

// inTurns calls do(i) for each i in [0, n), at most limit at once (at least
// one), and returns when every call has returned. A call whose turn comes
// when ctx has ended is not made: skip(i) is called instead. The scrapes,
// the stats calls and the inspects of a run take their turns this way.
func inTurns(ctx context.Context, n, limit int, do, skip func(i int)) {
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
			}
			if expired(ctx) {
				skip(i)
				return
			}
			do(i)
		})
	}
	wg.Wait()
}

// errNotAsked is a call a run had no time left for.
var errNotAsked = errors.New("not asked: the run's deadline passed before its turn")
