// Package otelenv reads OpenTelemetry's environment variables:
// OTEL_RESOURCE_ATTRIBUTES, as the OpenTelemetry specification gives it.
package otelenv

import (
	"fmt"
	"net/url"
	"strings"
)

// ResourceAttributesVar is the variable ParseResourceAttributes reads.
const ResourceAttributesVar = "OTEL_RESOURCE_ATTRIBUTES"

// Attribute is one key=value pair.
type Attribute struct {
	Key, Value string
}

// ParseResourceAttributes parses a value of OTEL_RESOURCE_ATTRIBUTES: a
// comma-separated list of key=value pairs, each key and value
// percent-decoded ('+' stays '+') with the whitespace around it trimmed. The
// pairs come back in the order given; a key given twice keeps the place of
// its first and the value of its last. An empty (or all-whitespace) value is
// an empty list. An entry without '=', with an empty key, or with a bad
// percent escape makes the whole list an error (as the specification says,
// the whole variable is discarded then); the error is one line.
func ParseResourceAttributes(s string) ([]Attribute, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []Attribute
	index := map[string]int{}
	for i, entry := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("%s: entry %d %q: no '='", ResourceAttributesVar, i+1, entry)
		}
		key, err := url.PathUnescape(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d: key %q: bad percent escape", ResourceAttributesVar, i+1, strings.TrimSpace(k))
		}
		if key == "" {
			return nil, fmt.Errorf("%s: entry %d %q: empty key", ResourceAttributesVar, i+1, entry)
		}
		value, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d: value of %q: bad percent escape", ResourceAttributesVar, i+1, key)
		}
		if j, seen := index[key]; seen {
			out[j].Value = value
			continue
		}
		index[key] = len(out)
		out = append(out, Attribute{key, value})
	}
	return out, nil
}
