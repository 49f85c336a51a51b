// Package otelcoltest runs the project's OpenTelemetry Collector
// (tools/otelcol, built by `make .cache/bin/otelcol`; `make test` passes its
// path in OTELCOL_BIN) for tests: an OTLP/gRPC receiver on a free loopback
// port, plain or TLS with a certificate of a CA made for it, the attributes
// processor copying the received Mackerel-Api-Key header into an attribute
// of every data point, and the file exporter writing what arrived as OTLP
// JSON lines, which Collector.Metrics reads back.
package otelcoltest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/metrics/v1"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/testenv"
	"google.golang.org/protobuf/encoding/protojson"
)

// Bin is the collector binary from OTELCOL_BIN. Without it the test is
// skipped, or failed when CI is set.
func Bin(t testing.TB) string {
	t.Helper()
	return testenv.Tool(t, "OTELCOL_BIN", "the collector (tools/otelcol)")
}

// Options are a collector's settings.
type Options struct {
	// TLS makes the receiver serve TLS with a certificate for 127.0.0.1 and
	// localhost (and Host) signed by a CA made for this collector
	// (Collector.CAFile).
	TLS bool
	// Host is the IP address the receiver listens on: 127.0.0.1 when empty.
	// Tests whose plugin runs in a container of their own Docker network
	// give the network's gateway, the host's address on it.
	Host string
	// HeaderAttribute, when set, is the data point attribute the received
	// Mackerel-Api-Key header is inserted into (no attribute without one).
	HeaderAttribute string
}

// Collector is a running collector.
type Collector struct {
	Endpoint string         // host:port of the OTLP/gRPC receiver (127.0.0.1, or Options.Host)
	CAFile   string         // PEM of the CA of the receiver's certificate (TLS only)
	CAPool   *x509.CertPool // the same CA as a pool (TLS only)
	PID      int

	out  string // the file exporter's file
	logs *syncBuffer
}

// Start starts a collector with bin and stops it, by its PID, when the test
// ends. It returns once the receiver's port accepts connections.
func Start(t testing.TB, bin string, opts Options) *Collector {
	t.Helper()
	dir := t.TempDir()
	c := &Collector{out: filepath.Join(dir, "metrics.jsonl"), logs: &syncBuffer{}}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil {
		t.Fatalf("otelcoltest: Host %q is not an IP address", host)
	}
	var tlsConf string
	if opts.TLS {
		cert, key, ca, pool, err := writeCerts(dir, ip)
		if err != nil {
			t.Fatal(err)
		}
		c.CAFile, c.CAPool = ca, pool
		tlsConf = fmt.Sprintf("\n        tls:\n          cert_file: %q\n          key_file: %q", cert, key)
	}
	processors, pipelineProcessors := "", ""
	if opts.HeaderAttribute != "" {
		processors = fmt.Sprintf(`processors:
  attributes:
    actions:
      - action: insert
        key: %q
        from_context: metadata.mackerel-api-key
`, opts.HeaderAttribute)
		pipelineProcessors = "\n      processors: [attributes]"
	}
	// A port is free when the collector starts only most of the time:
	// another process may take it in between, so a collector that exits
	// before its port accepts is started again on another.
	var lastErr error
	for try := 0; try < 3; try++ {
		port, err := freePort(host)
		if err != nil {
			t.Fatal(err)
		}
		c.Endpoint = net.JoinHostPort(host, strconv.Itoa(port))
		config := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %q
        include_metadata: true%s
%sexporters:
  file:
    path: %q
    format: json
    flush_interval: 50ms
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    metrics:
      receivers: [otlp]%s
      exporters: [file]
`, c.Endpoint, tlsConf, processors, c.out, pipelineProcessors)
		cfg := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		if lastErr = c.start(t, bin, cfg); lastErr == nil {
			return c
		}
	}
	t.Fatalf("collector did not start: %v\nlogs:\n%s", lastErr, c.logs.String())
	return nil
}

func (c *Collector) start(t testing.TB, bin, cfg string) error {
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = c.logs, c.logs
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		return err
	}
	c.PID = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		// the collector's own process, by its PID
		if err := syscall.Kill(cmd.Process.Pid, syscall.SIGTERM); err == nil {
			select {
			case <-exited:
				return
			case <-time.After(10 * time.Second):
			}
		}
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("exited before its port accepted: %v", err)
		default:
		}
		conn, err := net.DialTimeout("tcp", c.Endpoint, time.Second)
		if err == nil {
			conn.Close()
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("collector logs:\n%s", c.logs.String())
				}
			})
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("port %s did not accept in 30s: %v", c.Endpoint, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Logs is what the collector wrote to stdout and stderr.
func (c *Collector) Logs() string { return c.logs.String() }

// Metrics reads back the resource metrics the collector has written, in the
// order received (an empty list before any).
func (c *Collector) Metrics() ([]*metricspb.ResourceMetrics, error) {
	reqs, err := c.Requests()
	var out []*metricspb.ResourceMetrics
	for _, r := range reqs {
		out = append(out, r...)
	}
	return out, err
}

// Requests reads back what the collector has written, one export request
// received an entry (the pipeline has no batching: the file exporter writes
// a line a request), in the order received.
func (c *Collector) Requests() ([][]*metricspb.ResourceMetrics, error) {
	b, err := os.ReadFile(c.out)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1] // not a line still being written
	var out [][]*metricspb.ResourceMetrics
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var md metricspb.MetricsData
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(line, &md); err != nil {
			return nil, fmt.Errorf("line %d of the file exporter's output: %v", i+1, err)
		}
		out = append(out, md.ResourceMetrics)
	}
	return out, nil
}

// WaitMetrics waits up to timeout for at least n resource metrics and
// returns all that arrived; fewer than n fail the test.
func (c *Collector) WaitMetrics(t testing.TB, n int, timeout time.Duration) []*metricspb.ResourceMetrics {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := c.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector at %s: %d resource metrics after %s, want %d\nlogs:\n%s",
				c.Endpoint, len(got), timeout, n, c.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort is a port of host where nothing listens now.
func freePort(host string) (int, error) {
	// Below Linux's ephemeral range (32768-60999): a port the kernel never
	// hands to a listener on port 0 (an httptest server of another test
	// process) between this check and the collector's bind.
	var err error
	for try := 0; try < 100; try++ {
		port := 20000 + mrand.IntN(12000)
		var l net.Listener
		if l, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, err
}

// writeCerts writes a new CA (ca.pem) and a server certificate it signed
// for 127.0.0.1, ::1, localhost and host (cert.pem, key.pem) into dir.
func writeCerts(dir string, host net.IP) (cert, key, ca string, pool *x509.CertPool, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ecs-gostats test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, host},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return
	}
	cert, key, ca = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{cert, "CERTIFICATE", srvDER}, {key, "EC PRIVATE KEY", keyDER}, {ca, "CERTIFICATE", caDER}} {
		if err = os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return
		}
	}
	pool = x509.NewCertPool()
	pool.AddCert(caCert)
	return
}

// syncBuffer is a bytes.Buffer safe for the process's writers and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Clone(s.b.String())
}

// Kind is how m was sent, as the tests compare it: gauge, sum/monotonic or
// sum/updown, with the temporality appended to a sum that is not
// cumulative.
func Kind(m *metricspb.Metric) string {
	switch {
	case m.GetSum() != nil:
		s := m.GetSum()
		kind := "sum/updown"
		if s.IsMonotonic {
			kind = "sum/monotonic"
		}
		if s.AggregationTemporality != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
			kind += "/" + s.AggregationTemporality.String()
		}
		return kind
	case m.GetGauge() != nil:
		return "gauge"
	}
	return fmt.Sprintf("other(%T)", m.Data)
}
