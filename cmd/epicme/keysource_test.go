package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Both keys of the data directory can come from a file or a variable, so
// that instances sharing a database share them without copying files
// (issue: container secrets); a wrong size is refused with the fix.
func TestKeySourcesFromFileVariableOrDataDirectory(t *testing.T) {
	for _, k := range []keySource{kekSource(), secretSource()} {
		t.Run(k.flag, func(t *testing.T) {
			dir := t.TempDir()
			local, err := k.load(dir)
			if err != nil || len(local) != k.size {
				t.Fatalf("data directory: %d bytes, %v", len(local), err)
			}
			if _, err := os.Stat(filepath.Join(dir, k.dataFile)); err != nil {
				t.Fatalf("%s not created: %v", k.dataFile, err)
			}

			want := bytes.Repeat([]byte{7}, k.size)
			file := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(file, want, 0o600); err != nil {
				t.Fatal(err)
			}
			fromFile := k
			fromFile.file = file
			if got, err := fromFile.load(t.TempDir()); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("--%s: %x, %v", k.flag, got, err)
			}

			fromEnv := k
			fromEnv.getenv = func(name string) string {
				if name == k.env {
					return base64.StdEncoding.EncodeToString(want)
				}
				return ""
			}
			if got, err := fromEnv.load(t.TempDir()); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: %x, %v", k.env, got, err)
			}

			if err := os.WriteFile(file, want[:5], 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := fromFile.load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "holds 5 bytes") || !strings.Contains(err.Error(), k.dataFile) {
				t.Fatalf("short file: %v", err)
			}
			bad := k
			bad.getenv = func(string) string { return "not base64!" }
			if _, err := bad.load(t.TempDir()); err == nil || !strings.Contains(err.Error(), k.env+" must be the base64") {
				t.Fatalf("bad variable: %v", err)
			}
		})
	}
}
