package mpecsgostats

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Keys: the task part of every metric key, "<prefix>.<key>.<graph>.<metric>",
// rendered from the --key template for each target.

// defaultKey names a target by its published host port, as the shell loop did.
const defaultKey = "{port}"

// defaultTaskMetadataKey names a target of --source task-metadata by its
// container in the task definition: the task is the host.
const defaultTaskMetadataKey = "{container}"

// placeholders are what a --key template may use.
var placeholders = []string{"port", "container_port", "family", "revision", "container", "task", "name", "slot"}

// gapOf is why t has no value for the placeholder, as its source says.
func gapOf(t target, name string) keyGap {
	if t.gap != nil {
		if g := t.gap(name); g.why != "" {
			return g
		}
	}
	return keyGap{why: "it has no value for it"}
}

var placeholderRE = regexp.MustCompile(`\{[^{}]*\}`)

// keyTemplate is a parsed --key.
type keyTemplate string

// parseKeyTemplate checks a --key: one metric key segment, so no '.', and at
// least one placeholder, all known.
func parseKeyTemplate(s string) (keyTemplate, error) {
	names := placeholderRE.FindAllString(s, -1)
	switch {
	case strings.Contains(s, "."):
		return "", fmt.Errorf("--key %q: '.' would split the metric key; use '-' or '_'", s)
	case len(names) == 0:
		return "", fmt.Errorf("--key %q: no placeholder, so every task would get the same key; use e.g. '{family}-{slot}'", s)
	}
	for _, n := range names {
		if !slices.Contains(placeholders, strings.Trim(n, "{}")) {
			return "", fmt.Errorf("--key %q: unknown placeholder %s (valid: %s)", s, n, placeholderList())
		}
	}
	return keyTemplate(s), nil
}

func placeholderList() string {
	var l []string
	for _, p := range placeholders {
		l = append(l, "{"+p+"}")
	}
	return strings.Join(l, " ")
}

func (k keyTemplate) uses(name string) bool { return strings.Contains(string(k), "{"+name+"}") }

// value is a placeholder's value for t ("" when t has none).
func value(t target, name string) string {
	switch name {
	case "port":
		if t.HostPort == 0 {
			return ""
		}
		return strconv.Itoa(int(t.HostPort))
	case "container_port":
		return strconv.Itoa(int(t.PrivatePort))
	case "family":
		return t.Family
	case "revision":
		return t.Revision
	case "container":
		return t.ECSContainer
	case "task":
		return t.TaskID
	case "name":
		return t.ContainerName
	}
	return ""
}

var unsafeKeyChars = regexp.MustCompile(`[^-a-zA-Z0-9_]`)

// render fills every placeholder but {slot}, which stays as written. missing
// is the first placeholder t has no value for, "" when none.
func (k keyTemplate) render(t target) (key, missing string) {
	out := placeholderRE.ReplaceAllStringFunc(string(k), func(ph string) string {
		name := strings.Trim(ph, "{}")
		if name == "slot" {
			return ph
		}
		v := value(t, name)
		if v == "" && missing == "" {
			missing = name
		}
		return unsafeKeyChars.ReplaceAllString(v, "_")
	})
	return unsafeKeyChars.ReplaceAllStringFunc(out, func(c string) string {
		if c == "{" || c == "}" {
			return c // of {slot}
		}
		return "_"
	}), missing
}

// keyed is a target with its key.
type keyed struct {
	target
	key string
}

// assignKeys renders the key of every target. {slot} numbers the targets
// whose key is otherwise equal 1, 2, 3, ...: a target keeps its number while
// it is listed (last.Slots), a new one takes the lowest free number (oldest
// container first, then container id, then port). Targets without a value for
// a placeholder, and all but one of targets with the same key (the one that
// had it at the last run, else the oldest), are skipped with a warning, and
// so is a target with a bad label, without (its scrape reports it). It
// returns every target in order with its key, "" for those skipped, and the
// slots to remember.
func assignKeys(tmpl keyTemplate, targets []target, last state) (out []keyed, warnings []string, slots map[string]map[string]int) {
	bases := make([]string, len(targets))
	ok := make([]bool, len(targets))
	type kindGap struct{ placeholder, kind string }
	var kinds []kindGap              // in the order first met
	byKind := map[kindGap][]string{} // container names
	kindGaps := map[kindGap]keyGap{}
	for i, t := range targets {
		base, missing := tmpl.render(t)
		if t.bad != nil {
			continue
		}
		if missing == "" {
			bases[i], ok[i] = base, true
			continue
		}
		g := gapOf(t, missing)
		if g.kind == "" {
			warnings = append(warnings, fmt.Sprintf("container %s %s (port %d) skipped: --key %q uses {%s}, but %s; use a --key without it, or filter the container out",
				t.ContainerName, t.ShortID(), t.PrivatePort, string(tmpl), missing, g.why))
			continue
		}
		k := kindGap{missing, g.kind}
		if _, seen := byKind[k]; !seen {
			kinds = append(kinds, k)
		}
		byKind[k], kindGaps[k] = append(byKind[k], t.ContainerName), g
	}
	for _, k := range kinds { // one warning for all the targets of a kind
		names, g := byKind[k], kindGaps[k]
		warnings = append(warnings, fmt.Sprintf("%d %s targets skipped (%s): --key %q uses {%s}, but %s; %s",
			len(names), k.kind, abbreviate(slices.Compact(names), 3), string(tmpl), k.placeholder, g.why, g.fix))
	}

	keys := slices.Clone(bases)
	if tmpl.uses("slot") {
		slots = map[string]map[string]int{}
		groups := map[string][]int{} // base -> target indexes
		for i := range targets {
			if ok[i] {
				groups[bases[i]] = append(groups[bases[i]], i)
			}
		}
		for base, members := range groups {
			slots[base] = numberSlots(targets, members, last.Slots[base])
			for _, i := range members {
				keys[i] = strings.ReplaceAll(base, "{slot}", strconv.Itoa(slots[base][targets[i].identity()]))
			}
		}
	}

	// One target per key: the last run's owner, else the oldest.
	owners := map[string]int{}
	for i := range targets {
		if !ok[i] {
			continue
		}
		j, taken := owners[keys[i]]
		if !taken || keeps(targets[i], targets[j], last.Tasks[keys[i]].Target) {
			owners[keys[i]] = i
		}
	}
	for i, t := range targets {
		if !ok[i] {
			out = append(out, keyed{target: t})
			continue
		}
		if o := owners[keys[i]]; o != i {
			w := targets[o]
			warnings = append(warnings, fmt.Sprintf("container %s %s (port %d) skipped: key %q is taken by container %s %s (port %d); add {slot} to --key to number them",
				t.ContainerName, t.ShortID(), t.PrivatePort, keys[i], w.ContainerName, w.ShortID(), w.PrivatePort))
			out = append(out, keyed{target: t})
			continue
		}
		out = append(out, keyed{target: t, key: keys[i]})
	}
	return out, warnings, slots
}

// keeps tells whether a rather than b keeps a key lastOwner had.
func keeps(a, b target, lastOwner string) bool {
	switch lastOwner {
	case b.identity():
		return false
	case a.identity():
		return true
	}
	return older(a, b)
}

// numberSlots gives each member target its slot: the one it had, else the
// lowest free number, new targets oldest first.
func numberSlots(targets []target, members []int, had map[string]int) map[string]int {
	slots := map[string]int{}
	used := map[int]bool{}
	var fresh []target
	for _, i := range members {
		t := targets[i]
		if n := had[t.identity()]; n > 0 && !used[n] {
			slots[t.identity()], used[n] = n, true
		} else {
			fresh = append(fresh, t)
		}
	}
	slices.SortFunc(fresh, func(a, b target) int {
		if older(a, b) {
			return -1
		}
		if older(b, a) {
			return 1
		}
		return 0
	})
	n := 1
	for _, t := range fresh {
		for used[n] {
			n++
		}
		slots[t.identity()], used[n] = n, true
	}
	return slots
}

// older orders targets oldest container first, then by container id, then
// by port.
func older(a, b target) bool {
	if a.Created != b.Created {
		return a.Created < b.Created
	}
	if a.ContainerID != b.ContainerID {
		return a.ContainerID < b.ContainerID
	}
	return a.PrivatePort < b.PrivatePort
}
