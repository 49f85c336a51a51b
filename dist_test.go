package main

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const distBin = "mackerel-plugin-ecs-gostats"

var distArchs = []string{"amd64", "arm64"}

// distEnv returns the environment `make test` and `make test-dist` set, skipping the test when it is
// missing outside CI (under CI it fails; `make test-dist` also treats a skip as a failure).
func distEnv(t *testing.T, names ...string) []string {
	t.Helper()
	var vals []string
	for _, n := range names {
		v := os.Getenv(n)
		if v == "" {
			skipUnlessCI(t, n+" is not set: run `make test-dist`, which builds the zips and mkr and sets it")
		}
		vals = append(vals, v)
	}
	return vals
}

func distZip(dir, arch string) string {
	return filepath.Join(dir, distBin+"_linux_"+arch+".zip")
}

// readZip returns the contents and modes of the zip's entries by name.
func readZip(t *testing.T, path string) (map[string][]byte, map[string]os.FileMode) {
	t.Helper()
	r, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	files, modes := map[string][]byte{}, map[string]os.FileMode{}
	for _, f := range r.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], modes[f.Name] = b, f.Mode()
	}
	return files, modes
}

func TestDistZips(t *testing.T) {
	env := distEnv(t, "DIST_DIR")
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, arch := range distArchs {
		t.Run(arch, func(t *testing.T) {
			files, modes := readZip(t, distZip(env[0], arch))
			names := slices.Sorted(func(yield func(string) bool) {
				for n := range files {
					if !yield(n) {
						return
					}
				}
			})
			if want := []string{"LICENSE", "README.md", distBin}; !slices.Equal(names, want) {
				t.Fatalf("entries = %q, want %q at the top level", names, want)
			}
			for _, doc := range []string{"LICENSE", "README.md"} {
				want, err := os.ReadFile(doc)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(files[doc], want) {
					t.Errorf("%s in the zip differs from the repository's", doc)
				}
			}
			if m := modes[distBin]; !m.IsRegular() || m.Perm()&0o111 != 0o111 {
				t.Errorf("%s mode %v: mkr installs only executables", distBin, m)
			}
			f, err := elf.NewFile(bytes.NewReader(files[distBin]))
			if err != nil {
				t.Fatal(err)
			}
			if f.Machine != machines[arch] {
				t.Errorf("ELF machine %v, want %v", f.Machine, machines[arch])
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("dynamically linked (%v): build with CGO_ENABLED=0", p.Type)
				}
			}
		})
	}
}

func TestDistMkrInstall(t *testing.T) {
	env := distEnv(t, "MKR_BIN", "DIST_DIR", "DIST_VERSION")
	mkr, dir, version := env[0], env[1], env[2]
	for _, arch := range distArchs {
		t.Run(arch, func(t *testing.T) {
			zipPath, err := filepath.Abs(distZip(dir, arch))
			if err != nil {
				t.Fatal(err)
			}
			prefix := t.TempDir()
			out, err := exec.Command(mkr, "plugin", "install", "--prefix", prefix, "file://"+zipPath).CombinedOutput()
			if err != nil {
				t.Fatalf("mkr plugin install: %v\n%s", err, out)
			}
			t.Logf("mkr plugin install:\n%s", out)

			// mkr places every executable named mackerel-plugin-* (and nothing else) in <prefix>/bin.
			entries, err := os.ReadDir(filepath.Join(prefix, "bin"))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if !slices.Equal(names, []string{distBin}) {
				t.Fatalf("%s/bin holds %q, want only %s", prefix, names, distBin)
			}
			installed := filepath.Join(prefix, "bin", distBin)
			fi, err := os.Stat(installed)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm()&0o111 != 0o111 {
				t.Errorf("installed mode %v is not executable", fi.Mode())
			}
			files, _ := readZip(t, zipPath)
			got, err := os.ReadFile(installed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, files[distBin]) {
				t.Error("the installed binary differs from the one in the zip")
			}

			if arch != runtime.GOARCH {
				t.Logf("not running the %s binary on %s", arch, runtime.GOARCH)
				return
			}
			out, err = exec.Command(installed, "--version").Output()
			if err != nil {
				t.Fatalf("%s --version: %v", installed, err)
			}
			if want := distBin + " " + version + "\n"; string(out) != want {
				t.Errorf("--version printed %q, want %q", out, want)
			}
		})
	}
}

// TestDistMkrDashboardPush pushes examples/dashboard.json with the real `mkr dashboards push` to a
// loopback stand-in for the Mackerel API and checks that every widget arrives intact.
func TestDistMkrDashboardPush(t *testing.T) {
	mkr := distEnv(t, "MKR_BIN")[0]
	api := &mackerelAPI{}
	srv := httptest.NewServer(api.handler(t))
	defer srv.Close()

	cmd := exec.Command(mkr, "--apibase", srv.URL, "dashboards", "push", "--file-path", "examples/dashboard.json")
	cmd.Env = append(os.Environ(), "MACKEREL_APIKEY=test-api-key")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkr dashboards push: %v\n%s", err, out)
	}
	writes := api.takeWrites()
	if len(writes) != 1 || writes[0].method != http.MethodPost || writes[0].path != "/api/v0/dashboards" {
		t.Fatalf("want one POST /api/v0/dashboards with the API key, got %+v", writes)
	}
	checkDashboardSent(t, writes[0].body, "examples/dashboard.json")
}

// TestGoreleaserMatchesDist checks that a tagged release builds the same zips as `make dist`.
func TestGoreleaserMatchesDist(t *testing.T) {
	b, err := os.ReadFile(".goreleaser.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Version     int    `yaml:"version"`
		ProjectName string `yaml:"project_name"`
		Builds      []struct {
			ID      string   `yaml:"id"`
			Main    string   `yaml:"main"`
			Binary  string   `yaml:"binary"`
			Env     []string `yaml:"env"`
			Flags   []string `yaml:"flags"`
			Ldflags []string `yaml:"ldflags"`
			Goos    []string `yaml:"goos"`
			Goarch  []string `yaml:"goarch"`
		} `yaml:"builds"`
		Archives []struct {
			ID              string   `yaml:"id"`
			IDs             []string `yaml:"ids"`
			Formats         []string `yaml:"formats"`
			NameTemplate    string   `yaml:"name_template"`
			WrapInDirectory bool     `yaml:"wrap_in_directory"`
			Files           []string `yaml:"files"`
		} `yaml:"archives"`
		Checksum map[string]string `yaml:"checksum"`
		Release  map[string]any    `yaml:"release"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Version != 2 || cfg.ProjectName != distBin || len(cfg.Builds) != 1 || len(cfg.Archives) != 1 {
		t.Fatalf("want version 2, project %s, one build and one archive: %+v", distBin, cfg)
	}
	bd, ar := cfg.Builds[0], cfg.Archives[0]
	if bd.Binary != distBin || !slices.Equal(bd.Env, []string{"CGO_ENABLED=0"}) ||
		!slices.Equal(bd.Flags, []string{"-trimpath"}) ||
		!slices.Equal(bd.Ldflags, []string{"-s -w -X main.version={{ .Version }}"}) ||
		!slices.Equal(bd.Goos, []string{"linux"}) || !slices.Equal(bd.Goarch, distArchs) {
		t.Errorf("build differs from make dist: %+v", bd)
	}
	if !slices.Equal(ar.IDs, []string{bd.ID}) || !slices.Equal(ar.Formats, []string{"zip"}) ||
		ar.NameTemplate != "{{ .ProjectName }}_{{ .Os }}_{{ .Arch }}" || ar.WrapInDirectory ||
		!slices.Equal(ar.Files, []string{"README.md", "LICENSE"}) {
		t.Errorf("archive differs from make dist: %+v", ar)
	}

	// The Makefile builds the same architectures.
	mk, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^DIST_ARCHS\s*:=\s*(.*)$`).FindSubmatch(mk)
	if m == nil || !slices.Equal(strings.Fields(string(m[1])), distArchs) {
		t.Errorf("Makefile DIST_ARCHS = %q, want %q", m, distArchs)
	}
}
