package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestReadmeShowsRealHelp keeps the README's options section the real
// --help output.
func TestReadmeShowsRealHelp(t *testing.T) {
	out, err := exec.Command(pluginBin, "--help").Output()
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "## Options\n\n```\n"+string(out)+"```\n") {
		t.Errorf("README.md's options section is not the --help output:\n%s", out)
	}
}
