package standin

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// NewTaskMetadata starts a stand-in for the ECS task metadata endpoint
// version 4, the one ECS puts in every task container's
// ECS_CONTAINER_METADATA_URI_V4 (the ECS agent's on EC2, Fargate's own on
// Fargate). It listens on addr ("127.0.0.1:0", or a Docker network's gateway
// address for containers to reach) and answers GET <URL>/task with task, a
// recorded answer, byte for byte; anything else is a 404. Its URL is the
// base URL, shaped like the real one: http://<addr>/v4/<id>.
func NewTaskMetadata(addr string, task []byte) (*Server, error) {
	b := make([]byte, 16)
	rand.Read(b)
	base := "/v4/" + hex.EncodeToString(b)
	return newServer(addr, base, map[string][]byte{base + "/task": task})
}

// Fault is how a stand-in answers.
type Fault int

const (
	Recorded  Fault = iota // the recorded answer, byte for byte (the default)
	Hang                   // accept the request and never answer
	Garbage                // 200 with a body that is not JSON
	Status500              // 500 Internal Server Error
)

// Server is a stand-in serving one recorded answer at one path.
type Server struct {
	URL string // base URL; see each constructor

	srv  *http.Server
	l    net.Listener
	done chan struct{} // closed by Close: ends hung requests

	mu       sync.Mutex
	fault    Fault
	requests []string
}

func newServer(addr, base string, answers map[string][]byte) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + l.Addr().String() + base, l: l, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.Path)
		fault := s.fault
		s.mu.Unlock()
		answer, ok := answers[r.URL.Path]
		if r.Method != http.MethodGet || !ok {
			http.NotFound(w, r)
			return
		}
		switch fault {
		case Hang:
			select {
			case <-r.Context().Done():
			case <-s.done:
			}
		case Garbage:
			w.Write([]byte("\x00\x01 not json"))
		case Status500:
			http.Error(w, "internal error", http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Write(answer)
		}
	})
	s.srv = &http.Server{Handler: mux}
	go s.srv.Serve(l)
	return s, nil
}

// SetFault makes the following requests answered as f says.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Requests lists the requests served so far, as "GET /path".
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// Addr is the address the stand-in listens on.
func (s *Server) Addr() string { return s.l.Addr().String() }

// Close stops the stand-in and ends the requests it holds.
func (s *Server) Close() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	close(s.done)
	if err := s.srv.Close(); err != nil {
		return fmt.Errorf("closing the stand-in at %s: %w", s.URL, err)
	}
	return nil
}
