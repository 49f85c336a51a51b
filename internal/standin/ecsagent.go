package standin

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// NewECSAgent starts a stand-in for the ECS container agent's introspection
// API (http://127.0.0.1:51678 on an ECS container instance). It listens on
// addr and answers GET /v1/tasks with tasks and GET /v1/metadata with
// metadata (when not nil), answers in the agent's shapes, byte for byte;
// anything else is a 404. Its URL is http://<addr>, what --ecs-agent-url
// takes.
func NewECSAgent(addr string, tasks, metadata []byte) (*Server, error) {
	answers := map[string][]byte{"/v1/tasks": tasks}
	if metadata != nil {
		answers["/v1/metadata"] = metadata
	}
	return newServer(addr, "", answers)
}

var placeholder = regexp.MustCompile(`\{\{[A-Z0-9_]+\}\}`)

// Fill makes a recorded answer of a template for what only exists at test
// time (container ids, addresses on a network the test made): every
// {{NAME}} in template is replaced by values["NAME"], and nothing else
// changes. Every placeholder must have a value and every value a
// placeholder, so a template and its test cannot drift apart silently.
func Fill(template []byte, values map[string]string) ([]byte, error) {
	used := map[string]bool{}
	var missing []string
	out := placeholder.ReplaceAllFunc(template, func(ph []byte) []byte {
		name := strings.Trim(string(ph), "{}")
		v, ok := values[name]
		if !ok {
			missing = append(missing, name)
			return ph
		}
		used[name] = true
		return []byte(v)
	})
	var unused []string
	for name := range values {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	slices.Sort(unused)
	if len(missing) > 0 || len(unused) > 0 {
		return nil, fmt.Errorf("template and values differ: no value for %q, no placeholder for %q", missing, unused)
	}
	return out, nil
}
