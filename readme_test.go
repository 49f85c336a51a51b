package main

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"unicode"
)

// readmeMaxLines is how long README.md may grow: it holds what a new user
// needs first, and links to docs/ for the rest.
const readmeMaxLines = 300

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

// TestReadmeLength keeps README.md short.
func TestReadmeLength(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")); n > readmeMaxLines {
		t.Errorf("README.md has %d lines, want at most %d: move the rest to docs/", n, readmeMaxLines)
	}
}

// docFiles lists README.md and docs/*.md.
func docFiles(t *testing.T, fsys fs.FS) []string {
	t.Helper()
	docs, err := fs.Glob(fsys, "docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"README.md"}, docs...)
}

// TestDocsLinksResolve checks every relative link of README.md and
// docs/*.md: the file exists and a #fragment names a heading in it.
// http(s) links are not fetched.
func TestDocsLinksResolve(t *testing.T) {
	fsys := os.DirFS(".")
	files := docFiles(t, fsys)
	if len(files) < 2 {
		t.Fatalf("no docs/*.md: %q", files)
	}
	if broken := brokenLinks(fsys, files); len(broken) > 0 {
		t.Errorf("%d broken links:\n%s", len(broken), strings.Join(broken, "\n"))
	}
}

// TestReadmeLinksEveryGuide checks that README.md links to every docs/*.md.
func TestReadmeLinksEveryGuide(t *testing.T) {
	fsys := os.DirFS(".")
	links, err := mdLinks(fsys, "README.md")
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]bool{}
	for _, l := range links {
		if p, _, ok := resolveLink("README.md", l.target); ok {
			linked[p] = true
		}
	}
	var missing []string
	for _, doc := range docFiles(t, fsys)[1:] {
		if !linked[doc] {
			missing = append(missing, doc)
		}
	}
	if len(missing) > 0 {
		t.Errorf("README.md does not link to %q", missing)
	}
}

// TestBrokenLinks checks the link checker itself.
func TestBrokenLinks(t *testing.T) {
	fsys := fstest.MapFS{
		"README.md": {Data: []byte("# Title\n\n" +
			"## Install\n\n" +
			"## Fargate, or any task with `mackerel-container-agent`\n\n" +
			"## Names that survive deploys ([more](docs/guide.md#keys))\n\n" +
			"## Install\n\n" +
			"Setext heading\n--------------\n\n" +
			"[a](#install) [b](#install-1) [c](#fargate-or-any-task-with-mackerel-container-agent)\n" +
			"[d](#names-that-survive-deploys-more) [e](#setext-heading) ![img](docs/guide.md)\n" +
			"[f](docs/guide.md) [g](docs/guide.md#the-metric-budget \"title\") [h](./docs/guide.md#keys)\n" +
			"[i](https://example.com/#nothing) [j](http://example.com) [k](mailto:a@example.com)\n" +
			"[l](#missing) [m](docs/missing.md) [n](docs/guide.md#missing) [o](examples/)\n" +
			"`[not a link](nowhere.md)`\n" +
			"```\n[not a link](nowhere.md)\n# not a heading\n```\n" +
			"[p](#not-a-heading) [q](../outside.md) [r](examples/a.conf#L1) [s](docs/guide.md#Keys)\n")},
		"docs/guide.md": {Data: []byte("# Guide\n\n## `--key` and {slot}: keys\n\n### The metric budget\n\n" +
			"## Keys\n\n[back](../README.md#install) [up](../README.md#gone) [ex](../examples/a.conf)\n")},
		"examples/a.conf": {Data: []byte("x\n")},
	}
	got := brokenLinks(fsys, docFiles(t, fsys))
	want := []string{
		`README.md:18: "#missing": no heading "missing" in README.md`,
		`README.md:18: "docs/missing.md": no file docs/missing.md`,
		`README.md:18: "docs/guide.md#missing": no heading "missing" in docs/guide.md`,
		`README.md:24: "#not-a-heading": no heading "not-a-heading" in README.md`,
		`README.md:24: "../outside.md": outside the repository`,
		`README.md:24: "examples/a.conf#L1": a #fragment on examples/a.conf, which is not Markdown`,
		`README.md:24: "docs/guide.md#Keys": no heading "Keys" in docs/guide.md`,
		`docs/guide.md:9: "../README.md#gone": no heading "gone" in README.md`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("broken links:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestHeadingAnchor checks GitHub's anchor rules: lowercase, spaces to
// '-', punctuation removed except '-' and '_'.
func TestHeadingAnchor(t *testing.T) {
	for _, c := range []struct{ heading, want string }{
		{"Install", "install"},
		{"bridge on EC2", "bridge-on-ec2"},
		{"Fargate, or any task with mackerel-container-agent", "fargate-or-any-task-with-mackerel-container-agent"},
		{"Fargate / mackerel-container-agent", "fargate--mackerel-container-agent"},
		{"`--key` and `{slot}`", "--key-and-slot"},
		{"gostats_scrape.* health", "gostats_scrape-health"},
		{"Upgrading from the shell loop (v0.1.0)", "upgrading-from-the-shell-loop-v010"},
		{"[Linked](other.md) heading", "linked-heading"},
		{"Größe ändern", "größe-ändern"},
	} {
		if got := headingAnchor(c.heading); got != c.want {
			t.Errorf("headingAnchor(%q) = %q, want %q", c.heading, got, c.want)
		}
	}
}

// mdLink is one link target of a Markdown file, with its line.
type mdLink struct {
	line   int
	target string
}

var (
	fenceRe    = regexp.MustCompile("^ {0,3}(```|~~~)")
	codeSpanRe = regexp.MustCompile("`+[^`]*`+")
	linkRe     = regexp.MustCompile(`\]\(\s*<?([^\s()<>]*)>?(?:\s+"[^"]*")?\s*\)`)
	refDefRe   = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?([^\s<>]+)>?`)
	atxRe      = regexp.MustCompile(`^ {0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*$`)
	setextRe   = regexp.MustCompile(`^ {0,3}(=+|-+)\s*$`)
	inlineRe   = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
)

// mdLines returns the lines of a Markdown file, those of fenced code
// blocks (fences included) replaced by empty lines.
func mdLines(fsys fs.FS, name string) ([]string, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(b), "\n")
	fence := ""
	for i, l := range lines {
		if m := fenceRe.FindStringSubmatch(l); m != nil {
			switch fence {
			case "":
				fence = m[1]
			case m[1]:
				fence = ""
			}
			lines[i] = ""
		} else if fence != "" {
			lines[i] = ""
		}
	}
	return lines, nil
}

// mdLinks returns the link targets of a Markdown file, those in code
// blocks and code spans excluded.
func mdLinks(fsys fs.FS, name string) ([]mdLink, error) {
	lines, err := mdLines(fsys, name)
	if err != nil {
		return nil, err
	}
	var links []mdLink
	for i, l := range lines {
		l = codeSpanRe.ReplaceAllString(l, "``")
		for _, m := range linkRe.FindAllStringSubmatch(l, -1) {
			links = append(links, mdLink{i + 1, m[1]})
		}
		if m := refDefRe.FindStringSubmatch(l); m != nil {
			links = append(links, mdLink{i + 1, m[1]})
		}
	}
	return links, nil
}

// mdAnchors returns the anchors GitHub gives the headings of a Markdown file.
func mdAnchors(fsys fs.FS, name string) (map[string]bool, error) {
	lines, err := mdLines(fsys, name)
	if err != nil {
		return nil, err
	}
	anchors := map[string]bool{}
	seen := map[string]int{}
	add := func(heading string) {
		a := headingAnchor(heading)
		if n := seen[a]; n > 0 {
			seen[a]++
			a = fmt.Sprintf("%s-%d", a, n)
		} else {
			seen[a] = 1
		}
		anchors[a] = true
	}
	for i, l := range lines {
		if m := atxRe.FindStringSubmatch(l); m != nil {
			add(m[1])
			continue
		}
		if i > 0 && setextRe.MatchString(l) && strings.TrimSpace(lines[i-1]) != "" &&
			!atxRe.MatchString(lines[i-1]) && !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "|") {
			add(lines[i-1])
		}
	}
	return anchors, nil
}

// headingAnchor is GitHub's anchor for a heading: its text lowercased,
// punctuation other than '-' and '_' removed, spaces turned into '-'.
func headingAnchor(heading string) string {
	text := inlineRe.ReplaceAllString(strings.TrimSpace(heading), "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// resolveLink returns the file (relative to the repository root) and the
// fragment a link of file from names; ok is false for external links.
func resolveLink(from, target string) (file, fragment string, ok bool) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(target, "//") {
		return "", "", false
	}
	file = from
	if u.Path != "" {
		file = path.Join(path.Dir(from), u.Path)
	}
	return file, u.Fragment, true
}

// brokenLinks checks the relative links of files, one line per broken link.
func brokenLinks(fsys fs.FS, files []string) []string {
	var broken []string
	anchors := map[string]map[string]bool{}
	for _, name := range files {
		links, err := mdLinks(fsys, name)
		if err != nil {
			broken = append(broken, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		for _, l := range links {
			fail := func(format string, args ...any) {
				broken = append(broken, fmt.Sprintf("%s:%d: %q: ", name, l.line, l.target)+fmt.Sprintf(format, args...))
			}
			file, fragment, ok := resolveLink(name, l.target)
			if !ok {
				continue
			}
			if !fs.ValidPath(file) {
				fail("outside the repository")
				continue
			}
			if _, err := fs.Stat(fsys, file); err != nil {
				fail("no file %s", file)
				continue
			}
			if fragment == "" {
				continue
			}
			if !strings.HasSuffix(file, ".md") {
				fail("a #fragment on %s, which is not Markdown", file)
				continue
			}
			if anchors[file] == nil {
				a, err := mdAnchors(fsys, file)
				if err != nil {
					fail("%v", err)
					continue
				}
				anchors[file] = a
			}
			if !anchors[file][fragment] {
				fail("no heading %q in %s", fragment, file)
			}
		}
	}
	return broken
}
