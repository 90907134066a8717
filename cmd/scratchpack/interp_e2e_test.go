package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestInterpreterSearchPaths: the search path each interpreter rule follows modules through is the one the
// interpreter itself prints inside the built root.
func TestInterpreterSearchPaths(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name, prog string
		note       string // the rule's note: the path, space- or colon-separated, after this prefix
		sep        string
		print      []string // prints the path, one entry a line
		exists     bool     // the interpreter drops directories that do not exist (Python's site)
	}{
		{"python", "/usr/bin/python3", "search path ", ":", []string{"/usr/bin/python3", "-c", "import sys; print('\\n'.join(p for p in sys.path if p))"}, true},
		{"perl", "/usr/bin/perl", "@INC ", " ", []string{"/usr/bin/perl", "-e", `print join("\n", @INC), "\n"`}, false},
		{"ruby", "/usr/bin/ruby", "$LOAD_PATH ", " ", []string{"/usr/bin/ruby", "-e", "puts $LOAD_PATH"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(tc.prog); err != nil {
				t.Fatalf("%s is not installed: run .ci/install-deps", tc.prog)
			}
			root := filepath.Join(t.TempDir(), "root")
			code, _, stderr := scratchpack(t, "build", tc.prog, "-o", "dir:"+root)
			if code != 0 {
				t.Fatalf("build: %s", stderr)
			}
			var ours []string
			for _, line := range strings.Split(stderr, "\n") {
				if _, rest, ok := strings.Cut(line, tc.name+": "); ok {
					if i := strings.Index(rest, tc.note); i >= 0 {
						list, _, _ := strings.Cut(rest[i+len(tc.note):], ";")
						ours = strings.Split(strings.TrimSpace(list), tc.sep)
					}
				}
			}
			if len(ours) == 0 {
				t.Fatalf("the %s rule says no search path:\n%s", tc.name, stderr)
			}
			theirs := strings.Fields(mustRunInRoot(t, root, nil, tc.print...))
			if tc.exists {
				// Python lists its zip and lib-dynload whether or not they exist, site directories only if
				// they do: every entry it prints must be ours, and every one of ours the image has, its.
				for _, p := range theirs {
					if !slices.Contains(ours, p) {
						t.Errorf("%s searches %s, which the rule does not", tc.prog, p)
					}
				}
				for _, p := range ours {
					if _, err := os.Stat(filepath.Join(root, p)); err == nil && !slices.Contains(theirs, p) {
						t.Errorf("the rule searches %s, which %s in the image does not", p, tc.prog)
					}
				}
				return
			}
			if diff := cmp.Diff(theirs, ours); diff != "" {
				t.Errorf("%s's search path in the image (-interpreter +rule):\n%s", tc.prog, diff)
			}
		})
	}
}
