package mpecsgostats

import (
	"bytes"
	"encoding/json"
)

// jsonKeys visits the top-level keys of a JSON object in body, in order,
// with whether each value is an object, until visit returns true. Values
// are skipped unread. It reports false when body is not a JSON object;
// JSON that breaks off ends the visit at the break. The JSON formats
// recognise their answers with it.
func jsonKeys(body []byte, visit func(key string, object bool) (stop bool)) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return true
		}
		key, _ := tok.(string)
		if tok, err = dec.Token(); err != nil {
			return true
		}
		if visit(key, tok == json.Delim('{')) || skipJSONValue(dec, tok) != nil {
			return true
		}
	}
	return true
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

// firstNonSpace is the first byte of body that is not JSON white space, or
// 0.
func firstNonSpace(body []byte) byte {
	for _, c := range body {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}
