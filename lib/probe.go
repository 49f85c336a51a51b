package mpecsgostats

import (
	"context"
	"fmt"
	"time"
)

// --format auto: a target's format is decided from its answer. Without a
// path from --path or a label, it is probed at each format's default path
// in turn (/stats, /metrics, /debug/vars); the first answer of a known
// format wins. What was found is remembered per target in the state, so an
// identified target costs one request a run; it is probed afresh after
// reprobeAfter of failing. A target that answers no probe with a known
// format (nginx, redis, a sidecar) is not a Go runtime: not a target, not
// counted, no warning; it is probed again after reprobeAfter.

// reprobeAfter is how long a finding stands without an answer to confirm it.
const reprobeAfter = 10 * time.Minute

// probePaths are the paths probed, in order: each format's default.
func (s scraper) probePaths() []string {
	var paths []string
	for _, f := range s.formats {
		paths = append(paths, f.defaultPath())
	}
	return paths
}

// probeAccept asks for any of the formats, in their order.
func (s scraper) probeAccept() string {
	var ranges []string
	for _, f := range s.formats {
		ranges = append(ranges, f.mediaRange())
	}
	return acceptHeader(ranges...)
}

// notGoYet sets apart the targets known, from a probe less than
// reprobeAfter ago, to answer with no known format: they are passed over
// this run, before keys are given, and what is known of them is kept.
func notGoYet(targets []target, known map[string]learnt, now time.Time) (keep []target, passed []passedOver, still map[string]learnt) {
	still = map[string]learnt{}
	for _, t := range targets {
		l, ok := known[t.identity()]
		if ok && l.Format == "" && t.format == nil && now.Sub(time.Unix(l.Time, 0)) < reprobeAfter {
			passed = append(passed, notGoPassed(t, l, now))
			still[t.identity()] = l
			continue
		}
		keep = append(keep, t)
	}
	return keep, passed, still
}

func notGoPassed(t target, l learnt, now time.Time) passedOver {
	return passedOver{t.ContainerName, t.ContainerID, fmt.Sprintf("port %d: not a Go runtime's stats (probed %s ago: %s)",
		t.PrivatePort, now.Sub(time.Unix(l.Time, 0)).Round(time.Second), abbreviate(l.Tried, 3))}
}

// probe asks t at each path until one answers with a known format. An
// answer of a known format that cannot be parsed ends the probe: the
// target failed.
func (s scraper) probe(ctx context.Context, t target, paths []string) (r result) {
	r = result{target: t, how: how{path: paths[0], formatFrom: "probe", pathFrom: "probe"}}
	refused := 0
	var tried []string
	accept, maxBytes := s.probeAccept(), s.maxProbeBodyBytes()
	for _, p := range paths {
		a, err := get(ctx, s.hc, t.URL(s.scheme, p), accept, maxBytes)
		if err != nil {
			tried = append(tried, p+": "+oneLine(s.cause(err).Error()))
			if !isHTTPStatus(err) {
				refused++
				r.cause = s.cause(err) // the target did not answer: failed, not "not Go"
			}
			continue
		}
		f := s.formats.recognise(a.contentType, a.body)
		if f == nil {
			tried = append(tried, p+": no known format")
			continue
		}
		r.how.format, r.how.path = f, p
		r.values, r.cause = f.parse(a.body)
		if r.cause == nil {
			r.learnt = &learnt{Format: f.name(), Path: p}
		}
		return r
	}
	if refused == 0 {
		r.cause = nil
		r.notGo = &learnt{Tried: tried}
		return r
	}
	if r.cause == nil {
		r.cause = fmt.Errorf("no answer of a known format (%s)", abbreviate(tried, 3))
	}
	return r
}

// settle takes what the scrapes found out: a target that answered no probe
// with a known format leaves the results for the containers passed over,
// and every finding is added to learnt, for the next run.
func settle(results []result, learnt map[string]learnt, now time.Time) (targets []result, passed []passedOver) {
	for _, r := range results {
		switch {
		case r.notGo != nil:
			learnt[r.target.identity()] = *r.notGo
			passed = append(passed, notGoPassed(r.target, *r.notGo, now))
			continue
		case r.learnt != nil:
			learnt[r.target.identity()] = *r.learnt
		}
		targets = append(targets, r)
	}
	return targets, passed
}

// maxProbeBodyBytes bounds a probe's answer: the largest of the formats'.
func (s scraper) maxProbeBodyBytes() int {
	n := 0
	for _, f := range s.formats {
		n = max(n, f.maxBodyBytes())
	}
	return n
}
