package mpecsgostats

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
)

func TestParseKeyTemplate(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{"{port}", ""},
		{"{family}-{slot}", ""},
		{"task_{task}", ""},
		{"{family}.{slot}", `--key "{family}.{slot}": '.' would split the metric key; use '-' or '_'`},
		{"web", `--key "web": no placeholder, so every task would get the same key; use e.g. '{family}-{slot}'`},
		{"", `--key "": no placeholder, so every task would get the same key; use e.g. '{family}-{slot}'`},
		{"{family}-{id}", `--key "{family}-{id}": unknown placeholder {id} (valid: {port} {container_port} {family} {revision} {container} {task} {name} {slot})`},
	}
	for _, tt := range tests {
		_, err := parseKeyTemplate(tt.in)
		if fmt.Sprint(err) != tt.wantErr && !(err == nil && tt.wantErr == "") {
			t.Errorf("parseKeyTemplate(%q) = %v\nwant %s", tt.in, err, tt.wantErr)
		}
	}
}

// web is a target of an ECS task of family web, in container c with port p,
// as the Docker source makes it.
func web(c string, created int64, hostPort uint16) target {
	return target{ContainerID: c + "0123456789abcdef", ContainerName: "ecs-web-3-web-" + c, Created: created,
		Family: "web", Revision: "3", ECSContainer: "web", TaskID: "5f1d7a3c" + c,
		HostPort: hostPort, PrivatePort: 8080, gap: dockerGap}
}

func TestRenderKeys(t *testing.T) {
	plain := target{ContainerID: "c0ffee0123456789", ContainerName: "my.app@1", PrivatePort: 9090, gap: dockerGap}
	taskMetadataPlain := target{ContainerID: "c0ffee0123456789", ContainerName: "worker", PrivatePort: 9090, gap: taskMetadataGap}
	noGap := target{ContainerID: "c0ffee0123456789", ContainerName: "static", PrivatePort: 9090} // a source that says nothing
	tests := []struct {
		tmpl     string
		target   target
		want     string
		warnings []string
	}{
		{"{port}", web("a", 1, 32769), "32769", nil},
		{"{family}-{revision}-{container}-{container_port}", web("a", 1, 32769), "web-3-web-8080", nil},
		{"{task}", web("a", 1, 32769), "5f1d7a3ca", nil},
		{"{name}", plain, "my_app_1", nil},
		{"x:{family}", web("a", 1, 0), "x_web", nil},
		{"{family}", plain, "", []string{`container my.app@1 c0ffee012345 (port 9090) skipped: --key "{family}" uses {family}, but it has no label com.amazonaws.ecs.task-definition-family; use a --key without it, or filter the container out`}},
		{"{port}", web("a", 1, 0), "", []string{`container ecs-web-3-web-a a0123456789a (port 8080) skipped: --key "{port}" uses {port}, but it publishes no host port for its container port; use a --key without it, or filter the container out`}},
		{"{revision}", taskMetadataPlain, "", []string{`container worker c0ffee012345 (port 9090) skipped: --key "{revision}" uses {revision}, but the task metadata gives it no Revision; use a --key without it, or filter the container out`}},
		{"{task}", noGap, "", []string{`container static c0ffee012345 (port 9090) skipped: --key "{task}" uses {task}, but it has no value for it; use a --key without it, or filter the container out`}},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			tmpl, err := parseKeyTemplate(tt.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			got, warnings, _ := assignedKeys(tmpl, []target{tt.target}, state{})
			key := ""
			if len(got) == 1 {
				key = got[0].key
			}
			if key != tt.want || !reflect.DeepEqual(warnings, tt.warnings) {
				t.Errorf("key %q, warnings %q\nwant %q, %q", key, warnings, tt.want, tt.warnings)
			}
		})
	}
}

// slotRun assigns keys for targets as a run does, against the last run's
// record, and returns key by container and the record for the next run.
func slotRun(t *testing.T, tmpl string, targets []target, last state) (map[string]string, state) {
	t.Helper()
	k, err := parseKeyTemplate(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	keyed, warnings, slots := assignedKeys(k, targets, last)
	if len(warnings) > 0 {
		t.Errorf("warnings %q", warnings)
	}
	got := map[string]string{}
	next := state{Tasks: map[string]taskState{}, Slots: slots}
	for _, kt := range keyed {
		got[kt.ContainerID[:1]] = kt.key
		next.Tasks[kt.key] = taskState{Target: kt.identity()}
	}
	return got, next
}

// TestSlotsAcrossARollingDeploy: three web tasks are replaced one by one;
// the names end as web-1..web-3 again and no more than four are ever used.
func TestSlotsAcrossARollingDeploy(t *testing.T) {
	const tmpl = "{family}-{slot}"
	steps := []struct {
		name    string
		targets []target
		want    map[string]string // container -> key
	}{
		{"three tasks, oldest first", []target{web("c", 30, 32771), web("a", 10, 32769), web("b", 20, 32770)},
			map[string]string{"a": "web-1", "b": "web-2", "c": "web-3"}},
		{"a fourth task starts", []target{web("a", 10, 32769), web("b", 20, 32770), web("c", 30, 32771), web("d", 40, 32772)},
			map[string]string{"a": "web-1", "b": "web-2", "c": "web-3", "d": "web-4"}},
		{"the oldest stops: the others keep their numbers", []target{web("b", 20, 32770), web("c", 30, 32771), web("d", 40, 32772)},
			map[string]string{"b": "web-2", "c": "web-3", "d": "web-4"}},
		{"a new task takes the lowest free number", []target{web("b", 20, 32770), web("c", 30, 32771), web("d", 40, 32772), web("e", 50, 32773)},
			map[string]string{"b": "web-2", "c": "web-3", "d": "web-4", "e": "web-1"}},
		{"two stop, two start at once: oldest first", []target{web("e", 50, 32773), web("d", 40, 32772), web("g", 70, 32775), web("f", 60, 32774)},
			map[string]string{"d": "web-4", "e": "web-1", "f": "web-2", "g": "web-3"}},
	}
	var last state
	for _, st := range steps {
		got, next := slotRun(t, tmpl, st.targets, last)
		if !reflect.DeepEqual(got, st.want) {
			t.Fatalf("%s: keys %v, want %v", st.name, got, st.want)
		}
		last = next
	}
}

// TestSlotsSameCreated: containers created in the same second are numbered
// by container id, then port; a container with two ports holds two slots.
func TestSlotsSameCreated(t *testing.T) {
	b9090 := web("b", 10, 32771)
	b9090.PrivatePort = 9090
	tmpl, _ := parseKeyTemplate("{family}-{slot}")
	keyed, _, _ := assignedKeys(tmpl, []target{b9090, web("b", 10, 32770), web("a", 10, 32769)}, state{})
	got := map[string]string{}
	for _, k := range keyed {
		got[k.identity()] = k.key
	}
	want := map[string]string{
		web("a", 10, 0).identity(): "web-1",
		web("b", 10, 0).identity(): "web-2",
		b9090.identity():           "web-3",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
}

// TestSlotsForgottenRecord: with no record (a lost state file) slots are
// numbered afresh, oldest first.
func TestSlotsForgottenRecord(t *testing.T) {
	got, _ := slotRun(t, "{family}-{slot}", []target{web("e", 50, 1), web("d", 40, 2)}, state{})
	if want := map[string]string{"d": "web-1", "e": "web-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
}

func TestKeyCollisions(t *testing.T) {
	a, b, c := web("a", 10, 32769), web("b", 20, 32770), web("c", 5, 32771)
	tmpl, _ := parseKeyTemplate("{family}")
	skipped := func(loser, winner target) string {
		return fmt.Sprintf("container %s %s (port 8080) skipped: key \"web\" is taken by container %s %s (port 8080); add {slot} to --key to number them",
			loser.ContainerName, loser.ShortID(), winner.ContainerName, winner.ShortID())
	}
	tests := []struct {
		name     string
		last     state
		want     string // container that keeps the key
		warnings []string
	}{
		{"no record: the oldest container", state{}, "c", []string{skipped(a, c), skipped(b, c)}},
		{"the last run's owner keeps it", state{Tasks: map[string]taskState{"web": {Target: b.identity()}}}, "b",
			[]string{skipped(a, b), skipped(c, b)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings, _ := assignedKeys(tmpl, []target{a, b, c}, tt.last)
			if len(got) != 1 || got[0].key != "web" || got[0].ContainerID[:1] != tt.want || !reflect.DeepEqual(warnings, tt.warnings) {
				t.Errorf("got %+v, warnings %q\nwant container %s, %q", got, warnings, tt.want, tt.warnings)
			}
		})
	}
}

// TestPortKeyOnAWSVPC: the default --key {port} names no awsvpc target;
// that is one warning a run, however many such targets, saying what to use.
func TestPortKeyOnAWSVPC(t *testing.T) {
	var targets []target
	for i, name := range []string{"a", "b", "c", "d"} {
		tg := web(name, int64(i), 0)
		tg.AWSVPC, tg.gap = true, awsvpcGap
		targets = append(targets, tg)
	}
	bridge := web("e", 5, 32769)
	keyed, warnings, _ := assignedKeys(defaultKey, append(targets, bridge), state{})
	want := []string{`4 awsvpc task targets skipped (ecs-web-3-web-a, ecs-web-3-web-b, ecs-web-3-web-c and 1 more): --key "{port}" uses {port}, but awsvpc tasks publish no host port; use --key '{family}-{slot}'`}
	if len(keyed) != 1 || keyed[0].key != "32769" || !reflect.DeepEqual(warnings, want) {
		t.Errorf("keyed %v, warnings %q\nwant the bridge target only and %q", keyed, warnings, want)
	}
}

// assignedKeys is assignKeys less the targets it skipped (key "").
func assignedKeys(tmpl keyTemplate, targets []target, last state) ([]keyed, []string, map[string]map[string]int) {
	out, warnings, slots := assignKeys(tmpl, targets, last)
	return slices.DeleteFunc(out, func(k keyed) bool { return k.key == "" }), warnings, slots
}
