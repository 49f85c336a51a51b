package mpecsgostats

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Scrape: every keyed target asked once, in parallel, at most --concurrency
// at once, all within the run's deadline.

// result is one target's scrape: its values, or why there are none.
type result struct {
	target   target
	key      string             // the task part of its metric keys
	values   map[string]float64 // as parsed: counters as read, hidden counters
	reported map[string]float64 // as printed: gauges, and counters as rates (rates.go)
	cause    error              // nil when scraped; says what failed, without naming the target
	latency  time.Duration
}

// scraper asks targets for their stats.
type scraper struct {
	hc          *http.Client
	scheme      string
	path        string
	format      format
	timeout     time.Duration // named by a target that did not answer in time
	concurrency int
}

func newScraper(hc *http.Client, opts options) scraper {
	return scraper{hc: hc, scheme: opts.Scheme, path: opts.Path, format: opts.format, timeout: opts.Timeout, concurrency: opts.Concurrency}
}

// scrape scrapes every target and returns the results in target order. A
// target still waiting for a slot when ctx ends is reported as not scraped.
func (s scraper) scrape(ctx context.Context, targets []keyed) []result {
	results := make([]result, len(targets))
	sem := make(chan struct{}, s.concurrency)
	var inFlight atomic.Int64
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
			}
			if expired(ctx) {
				results[i] = result{target: t.target, key: t.key, cause: notScraped(inFlight.Load())}
				return
			}
			inFlight.Add(1)
			results[i] = s.one(ctx, t)
			if !expired(ctx) {
				inFlight.Add(-1) // one still going at the deadline counts as in flight then
			}
		}()
	}
	wg.Wait()
	return results
}

func notScraped(inFlight int64) error {
	if inFlight == 0 {
		return errors.New("not scraped: the run's deadline passed before its turn (finding the targets took the time; see --timeout)")
	}
	return fmt.Errorf("not scraped: %d others still in flight at the deadline (see --concurrency)", inFlight)
}

// expired tells whether ctx has ended, by its deadline on the clock too: a
// connection deadline can fire a moment before ctx.Done is closed.
func expired(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(deadline)
}

func (s scraper) one(ctx context.Context, t keyed) result {
	start := time.Now()
	r := result{target: t.target, key: t.key}
	a, err := get(ctx, s.hc, t.URL(s.scheme, s.path), s.format.accept(), s.format.maxBodyBytes())
	if err == nil {
		r.values, err = s.format.parse(a.body)
	}
	r.latency = time.Since(start)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named by scrapeError
		}
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			err = fmt.Errorf("no answer within %s", s.timeout)
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			err = errors.New("the connection closed before an answer: usually nothing listens on the container port behind the published port (the service is still starting, or listens on another port: see --container-port)")
		}
		r.cause = err
	}
	return r
}

// scrapeError is a failed scrape's warning, naming the target.
func (s scraper) scrapeError(t target, err error) error {
	return fmt.Errorf("scrape %s (container %s %s): %w", t.URL(s.scheme, s.path), t.ContainerName, t.ShortID(), err)
}
