package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildSeveralOutputs: one build, -o twice, one result line per output in order; the same place twice
// is a usage error and writes nothing.
func TestBuildSeveralOutputs(t *testing.T) {
	dir := t.TempDir()
	root, layout := filepath.Join(dir, "root"), filepath.Join(dir, "layout")
	code, stdout, stderr := scratchpack(t, "build", "--certs", "never", "/bin/sh", "-o", "dir:"+root, "-o", "oci:"+layout+":v1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 2 || lines[0] != root || !strings.HasPrefix(lines[1], "sha256:") {
		t.Errorf("stdout %q: want the directory, then the image digest", stdout)
	}
	if _, err := os.Stat(filepath.Join(root, "bin")); err != nil {
		t.Errorf("the directory output: %v", err)
	}
	if _, err := os.Stat(filepath.Join(layout, "index.json")); err != nil {
		t.Errorf("the OCI output: %v", err)
	}

	same := filepath.Join(dir, "same")
	code, stdout, stderr = scratchpack(t, "build", "/bin/sh", "-o", "dir:"+same, "-o", "tar:"+same)
	if code != 2 || stdout != "" || !strings.Contains(stderr, "write the same place") {
		t.Errorf("the same output twice: exit %d, stdout %q, stderr %q; want a usage error", code, stdout, stderr)
	}
	if _, err := os.Lstat(same); err == nil {
		t.Error("a refused build wrote its output")
	}
}
