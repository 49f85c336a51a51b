// Command statsapp is the Go service the integration tests run as ECS-like
// tasks. It serves the real github.com/fukata/golang-stats-api-handler on
// :8080/stats. STATSAPP_MODE makes it misbehave the way a broken task does:
//
//	ok        the real handler (default)
//	badjson   200 with a body that is not JSON
//	hang      accepts the request and never answers
//	error     500 Internal Server Error
//	redirect  302 to /elsewhere
//	big       200 with an endless body
package main

import (
	"log"
	"net/http"
	"os"
	"strings"

	stats_api "github.com/fukata/golang-stats-api-handler"
)

func main() {
	addr := os.Getenv("STATSAPP_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	if os.Getenv("STATSAPP_PRETTY") != "" {
		stats_api.PrettyPrintEnabled()
	}
	if os.Getenv("STATSAPP_NEWLINE") != "" {
		stats_api.NewLineTermEnabled()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", handler(os.Getenv("STATSAPP_MODE")))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("statsapp\n"))
	})
	log.Fatal(http.ListenAndServe(addr, mux))
}

func handler(mode string) http.HandlerFunc {
	switch mode {
	case "", "ok":
		return stats_api.Handler
	case "badjson":
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html><body>It works!</body></html>\n"))
		}
	case "hang":
		return func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}
	case "error":
		return func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	case "redirect":
		return func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}
	case "big":
		return func(w http.ResponseWriter, r *http.Request) {
			chunk := []byte("{\"pad\":\"" + strings.Repeat("x", 64<<10))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}
	default:
		log.Fatalf("unknown STATSAPP_MODE %q", mode)
		return nil
	}
}
