package collector

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scratchpack/scratchpack/collector/rootfs"
	"github.com/scratchpack/scratchpack/elfdeps"
)

func TestCommandWords(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string
	}{
		{"exec redis-server --port 6379", []string{"redis-server"}},
		{"FOO=1 BAR=2 nginx -g 'daemon off;'", []string{"nginx"}},
		{"cd /app && exec env -i python3 app.py | tee log; echo done", []string{"cd", "python3", "tee", "echo"}},
		{"nohup worker & wait # then cleanup", []string{"worker", "wait"}},
		{`sh -c "exec jq -n 1"`, []string{"sh"}},
		{"(subshell arg)", []string{"subshell"}},
	} {
		if got := commandWords(c.line); !slices.Equal(got, c.want) {
			t.Errorf("commandWords(%q) = %q, want %q", c.line, got, c.want)
		}
	}
}

// An entrypoint script that runs its arguments (exec "$@") makes the command's first word a program of
// the image; a command word computed at run time is named in a note.
func TestPlanSlimEntrypointArgs(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"usr/local/bin/docker-entrypoint.sh": "#!/bin/sh\nset -e\nif [ \"$1\" = redis-server ]; then chown redis .; fi\n$HOOK\nexec \"$@\"\n",
		"usr/bin/redis-server":               "\x7fELF (not really)",
		"bin/sh":                             "\x7fELF (not really)",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root, err := rootfs.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	r, err := elfdeps.New(root)
	if err != nil {
		t.Fatal(err)
	}
	cf := &v1.ConfigFile{Config: v1.Config{Entrypoint: []string{"docker-entrypoint.sh"}, Cmd: []string{"redis-server", "--port", "6379"}}}
	sp := PlanSlim(r, root, cf)
	if want := []string{"/usr/local/bin/docker-entrypoint.sh", "/usr/bin/redis-server"}; !slices.Equal(sp.Programs, want) {
		t.Errorf("programs %q, want %q", sp.Programs, want)
	}
	if !slices.ContainsFunc(sp.Notes, func(n string) bool { return strings.Contains(n, `"$HOOK" is computed when it runs`) }) {
		t.Errorf("no note on the computed command: %q", sp.Notes)
	}
}
