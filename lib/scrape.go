package mpecsgostats

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// Scrape: every keyed target asked once, in parallel, at most --concurrency
// at once, all within the run's deadline.

// result is one target's scrape: its values, or why there are none.
type result struct {
	target   target
	key      string // the task part of its metric keys
	how      how    // the format and path used
	values   values // as parsed: counters as read, hidden counters
	reported values // as printed: gauges, and counters as rates (rates.go)
	cause    error  // nil when scraped; says what failed, without naming the target
	latency  time.Duration
	learnt   *learnt // --format auto: what to remember of the target
	notGo    *learnt // --format auto: no probe answered with a known format; not a target
}

// how is how a target was scraped: its format and path, and where each
// came from (label, flag, default, probe).
type how struct {
	format               format
	path                 string
	formatFrom, pathFrom string
}

// scraper asks targets for their stats.
type scraper struct {
	hc          *http.Client
	formats     formatList
	scheme      string
	path        string        // --path; "": the format's, or probed
	format      format        // --format; nil: auto
	formatFrom  string        // where --format's value came from: "flag" or "default"
	timeout     time.Duration // named by a target that did not answer in time
	concurrency int
	learnt      map[string]learnt // --format auto: the last runs' findings
	now         time.Time         // the run's start
	clock       func() time.Time  // the run's clock, for latencies
}

func newScraper(hc *http.Client, opts options, formats formatList, timeout time.Duration, learnt map[string]learnt, now time.Time, clock func() time.Time) scraper {
	return scraper{hc: hc, formats: formats, scheme: opts.Scheme, path: opts.Path, format: opts.format, formatFrom: opts.formatFrom, timeout: timeout,
		concurrency: opts.Concurrency, learnt: learnt, now: now, clock: clock}
}

// scrape scrapes every target and returns the results in target order. A
// target still waiting for a slot when ctx ends is reported as not scraped.
func (s scraper) scrape(ctx context.Context, targets []keyed) []result {
	results := make([]result, len(targets))
	var inFlight atomic.Int64
	inTurns(ctx, len(targets), s.concurrency, func(i int) {
		inFlight.Add(1)
		results[i] = s.one(ctx, targets[i])
		if !expired(ctx) {
			inFlight.Add(-1) // one still going at the deadline counts as in flight then
		}
	}, func(i int) {
		results[i] = result{target: targets[i].target, key: targets[i].key, cause: notScraped(inFlight.Load())}
	})
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
	start := s.clock()
	r := s.target(ctx, t.target)
	r.key, r.latency = t.key, s.clock().Sub(start)
	return r
}

// target scrapes t: with its label's format and path, else the flags', else
// the format's default path; with --format auto as learnt, else probed.
func (s scraper) target(ctx context.Context, t target) result {
	if t.bad != nil {
		return result{target: t, cause: t.bad}
	}
	h := s.planned(t)
	if h.format != nil {
		return s.fetch(ctx, t, h)
	}

	l, known := s.learnt[t.identity()]
	if f := s.formats.named(l.Format); known && f != nil && (h.path == "" || h.path == l.Path) &&
		(l.FailingSince == 0 || s.now.Sub(time.Unix(l.FailingSince, 0)) < reprobeAfter) {
		if h.path == "" {
			h.pathFrom = "probe"
		}
		h.format, h.path, h.formatFrom = f, l.Path, "probe"
		r := s.fetch(ctx, t, h)
		if r.cause != nil && l.FailingSince == 0 {
			l.FailingSince = s.now.Unix()
		} else if r.cause == nil {
			l.FailingSince = 0
		}
		r.learnt = &l
		return r
	}
	paths := s.probePaths()
	if h.path != "" {
		paths = []string{h.path}
	}
	r := s.probe(ctx, t, paths)
	if r.learnt != nil {
		r.learnt.Time = s.now.Unix()
	}
	if r.notGo != nil {
		r.notGo.Time = s.now.Unix()
	}
	if r.cause != nil && known && l.Format != "" {
		r.learnt = &l // still failing: probed again next run
	}
	if h.path != "" {
		r.how.pathFrom = h.pathFrom
	}
	return r
}

// fetch asks t at h.path and parses the answer as h.format.
func (s scraper) fetch(ctx context.Context, t target, h how) result {
	r := result{target: t, how: h}
	a, err := get(ctx, s.hc, t.URL(s.scheme, h.path), acceptHeader(h.format.mediaRange()), h.format.maxBodyBytes())
	if err == nil {
		r.values, err = s.formats.read(h.format, a.contentType, a.body)
	}
	if err != nil {
		r.cause = s.cause(err)
	}
	return r
}

// cause is a failed scrape's error in a few words, without the URL.
func (s scraper) cause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is named by scrapeError
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer within %s", s.timeout)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the connection closed before an answer: usually nothing listens on the container port behind the published port (the service is still starting, or listens on another port: see --container-port)")
	}
	return err
}

// scrapeError is a failed scrape's warning, naming the target.
func (s scraper) scrapeError(r result) error {
	t := r.target
	if t.bad != nil {
		return fmt.Errorf("container %s %s skipped: %w", t.ContainerName, t.ShortID(), r.cause)
	}
	return fmt.Errorf("scrape %s (container %s %s): %w", t.URL(s.scheme, s.pathOf(r)), t.ContainerName, t.ShortID(), r.cause)
}

// pathOf is where r's target was asked, or, not asked before the deadline,
// where it would have been asked first (none for a format still to be
// probed).
func (s scraper) pathOf(r result) string {
	if r.how.path != "" {
		return r.how.path
	}
	return s.planned(r.target).path
}

// planned is how t is asked before anything is learnt of it: with its
// label's format and path, else the flags', else the format's default
// path; no format (and the flag's path, if any) with --format auto.
func (s scraper) planned(t target) how {
	h := how{format: s.format, formatFrom: s.formatFrom, path: s.path, pathFrom: "flag"}
	if t.format != nil {
		h.format, h.formatFrom = t.format, "label"
	}
	if t.Path != "" {
		h.path, h.pathFrom = t.Path, "label"
	}
	if h.format != nil && h.path == "" {
		h.path, h.pathFrom = h.format.defaultPath(), "default"
	}
	return h
}
