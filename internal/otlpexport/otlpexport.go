// Package otlpexport sends OTLP metrics to one OTLP/gRPC endpoint: the
// resources of a run, in order, in as few export requests as fit under a
// byte limit each, gzip-compressed, over HTTP/2 (TLS verified against the
// system roots, or plain text with prior knowledge), with the API key in the
// Mackerel-Api-Key header. gRPC is spoken by connectrpc.com/connect over
// net/http.
package otlpexport

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	colmetricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/collector/metrics/v1"
	metricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/metrics/v1"
	kgzip "github.com/klauspost/compress/gzip"
	"golang.org/x/net/http2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

const (
	// DefaultMaxRequestBytes bounds one export request, uncompressed (what
	// a receiver checks against its limit after gzip): Mackerel refuses
	// requests over 4 MB.
	DefaultMaxRequestBytes = 3_500_000
	// APIKeyHeader carries the API key.
	APIKeyHeader = "Mackerel-Api-Key"
	// exportPath is the gRPC method of an export.
	exportPath = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
	// retryMargin is how much of the deadline must be left, after the
	// server's delay, for the one retry of a request.
	retryMargin = 2 * time.Second
	// unavailableDelay is the wait before retrying a request the server was
	// unavailable for, when it did not say how long to wait.
	unavailableDelay = 100 * time.Millisecond
	// retryInfoType is the error detail a server gives a retry delay in.
	retryInfoType = "google.rpc.RetryInfo"
)

// Exporter sends to one endpoint. The zero value of every field but
// Endpoint is usable.
type Exporter struct {
	Endpoint        string // HOST:PORT (CheckEndpoint)
	Insecure        bool   // plain text (HTTP/2 with prior knowledge); else TLS, verified against the system roots
	APIKey          string // sent in the Mackerel-Api-Key header when set; never in an error or a warning
	UserAgent       string // the User-Agent header; connect's when empty
	MaxRequestBytes int    // the limit of Requests; 0 means DefaultMaxRequestBytes
	// HTTPClient carries the requests; nil means a client of the send's own
	// (HTTP/2 only, no proxy), whose connections are closed when it ends.
	HTTPClient *http.Client
}

// Result is what a send did.
type Result struct {
	Requests int      // export requests sent and accepted
	Failed   int      // export requests that failed or were not sent
	Bytes    int      // size of the accepted requests, uncompressed
	Points   int      // data points in them
	Warnings []string // one line each: a partial success
}

// Send exports the resources, in order, over as few requests as fit under
// MaxRequestBytes each, one after another, within ctx. A request the server
// was unavailable for, or that it asked to be sent again after a delay
// (resource exhausted with a retry delay), is sent once more when the delay
// leaves at least 2 seconds before ctx's deadline. The error, one line,
// names the endpoint and never the API key; the requests accepted before or
// after a failed one are counted in the result.
func (e *Exporter) Send(ctx context.Context, resources []*metricspb.ResourceMetrics) (Result, error) {
	var res Result
	if len(resources) == 0 {
		return res, nil
	}
	limit := e.MaxRequestBytes
	if limit <= 0 {
		limit = DefaultMaxRequestBytes
	}
	reqs, sizes := batches(resources, limit)
	hc := e.HTTPClient
	if hc == nil {
		tr, err := newTransport(e.Insecure)
		if err != nil {
			res.Failed = len(reqs)
			return res, e.errorf("%v", err)
		}
		defer tr.CloseIdleConnections()
		hc = &http.Client{Transport: tr}
	}
	scheme := "https://"
	if e.Insecure {
		scheme = "http://"
	}
	client := connect.NewClient[colmetricspb.ExportMetricsServiceRequest, colmetricspb.ExportMetricsServiceResponse](
		hc, scheme+e.Endpoint+exportPath,
		connect.WithGRPC(),
		connect.WithCodec(vtCodec{}),
		// gzip by a compressor without state (newGzipWriter): a short-lived
		// process compresses one request a run (docs/performance.md)
		connect.WithAcceptCompression("gzip", newGzipReader, newGzipWriter),
		connect.WithSendCompression("gzip"),
	)

	var failed []string
	for i, req := range reqs {
		which := ""
		if len(reqs) > 1 {
			which = fmt.Sprintf("request %d of %d: ", i+1, len(reqs))
		}
		if ctx.Err() != nil {
			failed = append(failed, which+"not sent: "+context.Cause(ctx).Error())
			continue
		}
		resp, err := e.export(ctx, client, req)
		if err != nil {
			failed = append(failed, which+describe(err))
			continue
		}
		res.Requests++
		res.Bytes += sizes[i]
		res.Points += points(req)
		if ps := resp.Msg.GetPartialSuccess(); ps.GetRejectedDataPoints() > 0 || ps.GetErrorMessage() != "" {
			res.Warnings = append(res.Warnings, e.line(fmt.Sprintf("otlp %s: %s%d data points rejected: %s",
				e.Endpoint, which, ps.GetRejectedDataPoints(), ps.GetErrorMessage())))
		}
	}
	res.Failed = len(failed)
	switch len(failed) {
	case 0:
		return res, nil
	case 1:
		return res, e.errorf("%s", failed[0])
	default:
		return res, e.errorf("%s (and %d more requests failed)", failed[0], len(failed)-1)
	}
}

// export sends req, and once more when retryable says so.
func (e *Exporter) export(ctx context.Context, client *connect.Client[colmetricspb.ExportMetricsServiceRequest, colmetricspb.ExportMetricsServiceResponse],
	req *colmetricspb.ExportMetricsServiceRequest) (*connect.Response[colmetricspb.ExportMetricsServiceResponse], error) {
	call := func() (*connect.Response[colmetricspb.ExportMetricsServiceResponse], error) {
		r := connect.NewRequest(req)
		if e.APIKey != "" {
			r.Header().Set(APIKeyHeader, e.APIKey)
		}
		if e.UserAgent != "" {
			r.Header().Set("User-Agent", e.UserAgent)
		}
		return client.CallUnary(ctx, r)
	}
	resp, err := call()
	if err == nil {
		return resp, nil
	}
	delay, ok := retryable(err)
	if !ok {
		return nil, err
	}
	if deadline, has := ctx.Deadline(); has && time.Until(deadline) < delay+retryMargin {
		return nil, err
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, err
	case <-t.C:
	}
	return call()
}

// retryable tells whether a failed request may be sent again, and after
// how long: Unavailable (after the server's delay, else a short one), and
// ResourceExhausted when the server gives a delay. A certificate that does
// not verify will not verify on a second try either.
func retryable(err error) (time.Duration, bool) {
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		return 0, false
	}
	var cert *tls.CertificateVerificationError
	if errors.As(err, &cert) {
		return 0, false
	}
	delay, hasDelay := retryDelay(cerr)
	switch cerr.Code() {
	case connect.CodeUnavailable:
		if !hasDelay {
			delay = unavailableDelay
		}
		return delay, true
	case connect.CodeResourceExhausted:
		return delay, hasDelay
	}
	return 0, false
}

// retryDelay is the delay of the error's google.rpc.RetryInfo detail, read
// off the wire: RetryInfo{retry_delay = 1: google.protobuf.Duration{seconds
// = 1, nanos = 2}}.
func retryDelay(err *connect.Error) (time.Duration, bool) {
	for _, d := range err.Details() {
		if d.Type() != retryInfoType {
			continue
		}
		b := d.Bytes()
		var dur []byte
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				return 0, false
			}
			b = b[n:]
			if num == 1 && typ == protowire.BytesType {
				v, n := protowire.ConsumeBytes(b)
				if n < 0 {
					return 0, false
				}
				dur, b = v, b[n:]
				continue
			}
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return 0, false
			}
			b = b[n:]
		}
		var secs, nanos int64
		for len(dur) > 0 {
			num, typ, n := protowire.ConsumeTag(dur)
			if n < 0 {
				return 0, false
			}
			dur = dur[n:]
			if typ == protowire.VarintType && (num == 1 || num == 2) {
				v, n := protowire.ConsumeVarint(dur)
				if n < 0 {
					return 0, false
				}
				dur = dur[n:]
				if num == 1 {
					secs = int64(v)
				} else {
					nanos = int64(int32(v))
				}
				continue
			}
			if n = protowire.ConsumeFieldValue(num, typ, dur); n < 0 {
				return 0, false
			}
			dur = dur[n:]
		}
		if secs < 0 || nanos < 0 || secs > int64(time.Hour/time.Second) {
			return 0, false
		}
		return time.Duration(secs)*time.Second + time.Duration(nanos), true
	}
	return 0, false
}

// newTransport is a send's own: HTTP/2 only, over TLS with the system
// roots (RootCAs nil: SSL_CERT_FILE and SSL_CERT_DIR apply), or in plain
// text with prior knowledge (h2c); no proxy. Its HTTP/2 is golang.org/x/net's,
// not the copy inside net/http: mackerel-agent runs its plugins with
// GODEBUG=http2client=0 (what it sets for itself), which turns that copy off
// and would leave the transport without HTTP/2.
func newTransport(insecure bool) (*http.Transport, error) {
	var p http.Protocols
	if insecure {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP2(true)
	}
	t := &http.Transport{
		Protocols:       &p,
		DialContext:     (&net.Dialer{KeepAlive: -1}).DialContext,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if _, err := http2.ConfigureTransports(t); err != nil {
		return nil, err
	}
	return t, nil
}

// newGzipWriter compresses each write on its own with tables on the stack
// (klauspost/compress's stateless level), at about the size of
// compress/gzip's BestSpeed. A compress/gzip compressor, at any level,
// first allocates and clears about 1 MB of tables: in a new process that
// took twice the CPU of compressing one request without them.
func newGzipWriter() connect.Compressor {
	w, _ := kgzip.NewWriterLevel(io.Discard, kgzip.StatelessCompression) // a valid level: no error
	return w
}

func newGzipReader() connect.Decompressor { return &gzip.Reader{} }

// grpcCodes are the gRPC names of connect's codes, as errors show them.
var grpcCodes = map[connect.Code]string{
	connect.CodeCanceled:           "Canceled",
	connect.CodeUnknown:            "Unknown",
	connect.CodeInvalidArgument:    "InvalidArgument",
	connect.CodeDeadlineExceeded:   "DeadlineExceeded",
	connect.CodeNotFound:           "NotFound",
	connect.CodeAlreadyExists:      "AlreadyExists",
	connect.CodePermissionDenied:   "PermissionDenied",
	connect.CodeResourceExhausted:  "ResourceExhausted",
	connect.CodeFailedPrecondition: "FailedPrecondition",
	connect.CodeAborted:            "Aborted",
	connect.CodeOutOfRange:         "OutOfRange",
	connect.CodeUnimplemented:      "Unimplemented",
	connect.CodeInternal:           "Internal",
	connect.CodeUnavailable:        "Unavailable",
	connect.CodeDataLoss:           "DataLoss",
	connect.CodeUnauthenticated:    "Unauthenticated",
}

// describe is an export error in a few words: the gRPC code and message
// (without the URL of a transport error).
func describe(err error) string {
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		return err.Error()
	}
	code, ok := grpcCodes[cerr.Code()]
	if !ok {
		code = cerr.Code().String()
	}
	msg := cerr.Message()
	var uerr *url.Error
	if errors.As(cerr.Unwrap(), &uerr) {
		msg = uerr.Err.Error()
	}
	return code + ": " + msg
}

func (e *Exporter) errorf(format string, a ...any) error {
	return errors.New(e.line("otlp " + e.Endpoint + ": " + fmt.Sprintf(format, a...)))
}

// line makes s one line without the API key.
func (e *Exporter) line(s string) string {
	if e.APIKey != "" {
		s = strings.ReplaceAll(s, e.APIKey, "[key]")
	}
	return strings.Join(strings.Fields(s), " ")
}

// Requests puts the resources, in order, into as few export requests as
// fit under limit bytes each (encoded, uncompressed). A resource bigger
// than limit on its own goes alone in a request.
func Requests(resources []*metricspb.ResourceMetrics, limit int) []*colmetricspb.ExportMetricsServiceRequest {
	reqs, _ := batches(resources, limit)
	return reqs
}

// batches are Requests and the size of each (SizeVT: generated code, no
// reflection).
func batches(resources []*metricspb.ResourceMetrics, limit int) (reqs []*colmetricspb.ExportMetricsServiceRequest, sizes []int) {
	var cur *colmetricspb.ExportMetricsServiceRequest
	for _, rm := range resources {
		// field 1 of the request, length-delimited
		n := protowire.SizeTag(1) + protowire.SizeBytes(rm.SizeVT())
		if cur == nil || sizes[len(sizes)-1]+n > limit && len(cur.ResourceMetrics) > 0 {
			cur = &colmetricspb.ExportMetricsServiceRequest{}
			reqs, sizes = append(reqs, cur), append(sizes, 0)
		}
		cur.ResourceMetrics = append(cur.ResourceMetrics, rm)
		sizes[len(sizes)-1] += n
	}
	return reqs, sizes
}

// vtCodec is connect's protobuf codec with the generated marshaling of the
// OTLP messages (internal/otlppb): the export requests are marshaled and
// the answers decoded without protobuf's reflection, whose first use in a
// process costs more than the marshaling itself.
type vtCodec struct{}

func (vtCodec) Name() string { return "proto" } // replaces connect's codec of that name

func (c vtCodec) Marshal(m any) ([]byte, error) { return c.MarshalAppend(nil, m) }

func (vtCodec) MarshalAppend(dst []byte, m any) ([]byte, error) {
	req, ok := m.(*colmetricspb.ExportMetricsServiceRequest)
	if !ok {
		return nil, fmt.Errorf("marshal %T: want an export request", m)
	}
	n := req.SizeVT()
	dst = slices.Grow(dst, n)[:len(dst)+n]
	if _, err := req.MarshalToSizedBufferVT(dst[len(dst)-n:]); err != nil {
		return nil, fmt.Errorf("marshal %T: %w", m, err)
	}
	return dst, nil
}

// Unmarshal decodes an export answer with its generated code, and what
// else connect gives it (the google.rpc.Status of an error's details) as
// connect's own codec does.
func (vtCodec) Unmarshal(b []byte, m any) error {
	var err error
	switch msg := m.(type) {
	case *colmetricspb.ExportMetricsServiceResponse:
		err = msg.UnmarshalVT(b)
	case proto.Message:
		err = proto.Unmarshal(b, msg)
	default:
		return fmt.Errorf("unmarshal into %T: not a protobuf message", m)
	}
	if err != nil {
		return fmt.Errorf("unmarshal into %T: %w", m, err)
	}
	return nil
}

// points counts the number data points of a request.
func points(req *colmetricspb.ExportMetricsServiceRequest) int {
	n := 0
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				n += len(m.GetGauge().GetDataPoints()) + len(m.GetSum().GetDataPoints())
			}
		}
	}
	return n
}

// CheckEndpoint checks that s is HOST:PORT, the one form an endpoint takes:
// a host name, an IPv4 address or a bracketed IPv6 address, and a port from
// 1 to 65535; no scheme, no path.
func CheckEndpoint(s string) error {
	bad := func(why string) error { return fmt.Errorf("endpoint %q: %s; want HOST:PORT", s, why) }
	if strings.Contains(s, "://") {
		return bad("a URL, not HOST:PORT")
	}
	if strings.ContainsAny(s, "/?#@ \t\r\n") {
		return bad("has characters HOST:PORT does not")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return bad("no port, or an IPv6 address without brackets")
	}
	switch {
	case host == "":
		return bad("no host")
	case port == "" || strings.Trim(port, "0123456789") != "":
		return bad("the port is not a number")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return bad("the port is not from 1 to 65535")
	}
	if strings.HasPrefix(s, "[") {
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Is4In6() {
			return bad("brackets around what is not an IPv6 address")
		}
		return nil
	}
	if strings.ContainsAny(s, "[]") {
		return bad("misplaced brackets")
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return bad("the host is not a host name or an IP address")
		}
	}
	return nil
}
