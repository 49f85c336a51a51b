package main

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"testing"
	"unicode/utf8"
)

// The plugin-registry's own rules for an entry: valid UTF-8 JSON, an object with exactly the string
// fields "source" and "description", both non-empty, and source shaped like owner/repo.
var registrySourceRe = regexp.MustCompile(`\A[-_.a-zA-Z0-9]+/[-_.a-zA-Z0-9]+\z`)

func TestRegistryEntry(t *testing.T) {
	b, err := os.ReadFile("mackerel-plugin-ecs-gostats.json")
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(b) {
		t.Fatal("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var entry struct {
		Source      *string `json:"source"`
		Description *string `json:"description"`
	}
	if err := dec.Decode(&entry); err != nil {
		t.Fatalf("not a JSON object with only string fields source and description: %v", err)
	}
	if dec.More() {
		t.Fatal("trailing data after the JSON object")
	}
	if entry.Source == nil || *entry.Source == "" {
		t.Fatal(`"source" is missing or empty`)
	}
	if entry.Description == nil || *entry.Description == "" {
		t.Fatal(`"description" is missing or empty`)
	}
	if !registrySourceRe.MatchString(*entry.Source) {
		t.Errorf("source %q does not match %s", *entry.Source, registrySourceRe)
	}
	if want := "ecs-gostats/mackerel-plugin-ecs-gostats"; *entry.Source != want {
		t.Errorf("source = %q, want %q", *entry.Source, want)
	}
}
