package mpecsgostats

import (
	"bytes"
	"encoding/json"
	"mime"
	"slices"
)

// detectFormat tells which --format reads an answer, from its Content-Type
// and body: formatGostats for golang-stats-api-handler's JSON (an object
// with fields of metricDefs), formatExpvar for expvar's /debug/vars (an
// object with a "memstats" object), formatPrometheus for Prometheus text
// with at least one go_* sample, or "" for anything else (an HTML page, an
// answer of another protocol, text without go_* series, protobuf). It
// reads only as far as it needs: the keys of a JSON object up to
// "memstats", not their values; of text, the first line and the lines up
// to the first go_* sample.
func detectFormat(contentType string, body []byte) string {
	switch firstNonSpace(body) {
	case 0:
		return ""
	case '{':
		if f := detectJSON(body); f != "" {
			return f
		}
	}
	if looksLikePrometheus(contentType, body) && hasGoSample(body) {
		return formatPrometheus
	}
	return ""
}

// detectJSON reads the top-level keys of a JSON object: formatExpvar at a
// "memstats" key whose value is an object, else formatGostats when one of
// them is a field of golang-stats-api-handler's (at the first of them when
// "memstats" is nowhere in body). Values are skipped whole, unread. JSON
// that breaks off is judged on the keys before the break.
func detectJSON(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	handler := false
	var skipped json.RawMessage // reused: only the decoder's scan of a value, not its value, is needed
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		key, _ := tok.(string)
		if key == "memstats" {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			if tok == json.Delim('{') {
				return formatExpvar
			}
			if skipJSONValue(dec, tok) != nil {
				break
			}
			continue
		}
		if !handler && slices.ContainsFunc(metricDefs, func(m metricDef) bool { return m.name == key }) {
			if !bytes.Contains(body, []byte(`"memstats"`)) {
				return formatGostats // and no expvar further on
			}
			handler = true
		}
		if dec.Decode(&skipped) != nil {
			break
		}
	}
	if handler {
		return formatGostats
	}
	return ""
}

// skipJSONValue reads the rest of the value that starts with tok.
func skipJSONValue(dec *json.Decoder, tok json.Token) error {
	depth := 0
	for {
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth <= 0 {
			return nil
		}
		var err error
		if tok, err = dec.Token(); err != nil {
			return err
		}
	}
}

// looksLikePrometheus tells whether an answer is text in the Prometheus
// text format (or OpenMetrics, which shares its lines): by its
// Content-Type, or when it has none the parser knows, by its first line.
// A protobuf answer is not.
func looksLikePrometheus(contentType string, body []byte) bool {
	mediaType, _, _ := mime.ParseMediaType(contentType)
	switch mediaType {
	case "text/plain", "application/openmetrics-text":
		return true
	case "application/vnd.google.protobuf":
		return false
	}
	return checkFirstLine(body) == nil
}

// hasGoSample tells whether a line of body is a go_* sample.
func hasGoSample(body []byte) bool {
	for rest := body; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if isGoLine(line) && firstNonBlank(line) != '#' {
			return true
		}
	}
	return false
}

// firstNonBlank is the first byte of line that is not a blank or a tab, or 0.
func firstNonBlank(line []byte) byte {
	if line = bytes.TrimLeft(line, " \t"); len(line) > 0 {
		return line[0]
	}
	return 0
}
