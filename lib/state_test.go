package mpecsgostats

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadState(t *testing.T) {
	dir := t.TempDir()
	saved := lastRun(time.Unix(1795613637, 0))
	good, _ := json.Marshal(saved)
	empty := state{Version: stateVersion, Tasks: map[string]taskState{}}
	tests := []struct {
		name    string
		content []byte // nil: no file
		want    state
		wantErr string // %s is the path
	}{
		{"missing", nil, empty, ""},
		{"saved by a run", good, saved, ""},
		{"empty", []byte{}, empty, "state file %s ignored, rates start again: unexpected end of JSON input"},
		{"truncated", good[:40], empty, "state file %s ignored, rates start again: unexpected end of JSON input"},
		{"not JSON", []byte("\x00\xff garbage"), empty, "state file %s ignored, rates start again: invalid character '\\x00' looking for beginning of value"},
		{"go-mackerel-plugin-helper's state, as version 0.1.0 kept it", []byte(`{"gostats.32768.operation.memory_mallocs":10,"_lastTime":1795613577,"_containers":{"32768":"aaa"}}` + "\n"), empty, ""},
		{"a future layout", []byte(`{"version":2,"tasks":{}}`), empty, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if tt.content != nil {
				if err := os.WriteFile(path, tt.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := loadState(path)
			wantErr := ""
			if tt.wantErr != "" {
				wantErr = fmt.Sprintf(tt.wantErr, path)
			}
			if gotErr := fmt.Sprint(err); (err == nil) != (wantErr == "") || (err != nil && gotErr != wantErr) {
				t.Errorf("err %v\nwant %q", err, wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("state %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestSaveState(t *testing.T) {
	dir := t.TempDir()
	s := lastRun(time.Unix(1795613637, 0))

	t.Run("creates a missing work directory", func(t *testing.T) {
		path := filepath.Join(dir, "workdir", "not", "yet", "state")
		if err := saveState(path, s); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Dir(path))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("work directory: %v, %v; want mode 0755", fi, err)
		}
		got, err := loadState(path)
		if err != nil || !reflect.DeepEqual(got, s) {
			t.Errorf("read back %+v, %v\nwant %+v", got, err, s)
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Errorf("directory holds %d files, want only the state", len(entries))
		}
	})
	t.Run("parent is a file", func(t *testing.T) {
		notDir := filepath.Join(dir, "file")
		if err := os.WriteFile(notDir, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		err := saveState(filepath.Join(notDir, "state"), s)
		want := "cannot save state: mkdir " + notDir + ": not a directory"
		if err == nil || err.Error() != want {
			t.Errorf("err %v\nwant %s", err, want)
		}
	})
}
