package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDocsOptionsShowRealHelp keeps the options section of docs/options.md
// the real --help output.
func TestDocsOptionsShowRealHelp(t *testing.T) {
	out, err := exec.Command(pluginBin, "--help").Output()
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	doc, err := os.ReadFile("docs/options.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "## Options\n\n```\n"+string(out)+"```\n") {
		t.Errorf("docs/options.md's options section is not the --help output:\n%s", out)
	}
}
