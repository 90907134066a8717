package main

// scratchpack slim on images made by other tools: a Debian 12 root (mmdebstrap) packed by umoci into one
// layout, tagged with the configs of three workloads: jq (exec form, with ports, labels, a volume and a
// variable), jq through a shell-form command line, and a Python app using the standard library from its
// working directory. Each slim image keeps its config, is a small part of its source, runs its workload
// under chroot, and is reproducible; the source is not changed.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scratchpack/scratchpack/internal/debtree"
)

const slimApp = `import json, sys, collections
counts = collections.Counter(sys.argv[1:])
print(json.dumps({"words": sorted(counts), "n": sum(counts.values())}))
`

func TestE2ESlim(t *testing.T) {
	needRoot(t)
	needTools(t, "umoci", "skopeo")
	tree, err := debtree.Make("amd64", "jq", "dash", "coreutils", "base-passwd", "python3")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	layout := filepath.Join(dir, "oci")
	tool := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %q: %v\n%s", name, args, err, out)
		}
	}
	bundle := filepath.Join(dir, "bundle")
	tool("umoci", "init", "--layout", layout)
	tool("umoci", "new", "--image", layout+":base")
	tool("umoci", "unpack", "--image", layout+":base", bundle)
	tool("cp", "-a", tree+"/.", filepath.Join(bundle, "rootfs")+"/")
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs/app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "rootfs/app/app.py"), []byte(slimApp), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs/data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "rootfs/data/seed.json"), []byte(`{"seed": 1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tool("umoci", "repack", "--image", layout+":root", bundle)
	tool("umoci", "config", "--image", layout+":root", "--tag", "jq", "--config.entrypoint", "/usr/bin/jq",
		"--config.cmd", "-c", "--config.cmd", ".", "--config.label", "app=jq", "--config.exposedports", "8080/tcp",
		"--config.env", "FOO=bar", "--config.volume", "/data", "--config.stopsignal", "SIGINT")
	tool("umoci", "config", "--image", layout+":root", "--tag", "shell", "--config.entrypoint", "/bin/sh",
		"--config.entrypoint", "-c", "--config.cmd", "exec jq -n '2+2' && true")
	tool("umoci", "config", "--image", layout+":root", "--tag", "python", "--config.workingdir", "/app",
		"--config.cmd", "python3", "--config.cmd", "app.py")
	before := treeSnapshot(t, layout)

	for _, c := range []struct {
		tag  string
		argv []string // run in the slim root
		want string
	}{
		{"jq", []string{"/usr/bin/jq", "-c", ".seed", "/data/seed.json"}, "1\n"},
		{"shell", []string{"/bin/sh", "-c", "exec jq -n '2+2' && true"}, "4\n"},
		{"python", []string{"/usr/bin/python3", "/app/app.py", "b", "a", "b"}, `{"words": ["a", "b"], "n": 3}` + "\n"},
	} {
		t.Run(c.tag, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "slim")
			code, stdout, stderr := scratchpack(t, "slim", "--certs", "never", "oci:"+layout+":"+c.tag, "-o", "oci:"+out+":latest")
			if code != 0 {
				t.Fatalf("slim: exit %d\n%s", code, stderr)
			}
			digest := strings.TrimSpace(stdout)
			if again := buildDigestOf(t, "slim", "--certs", "never", "oci:"+layout+":"+c.tag, "-o", "oci:"+filepath.Join(t.TempDir(), "again")); again != digest {
				t.Errorf("slimming twice gave %s, then %s", digest, again)
			}
			_, srcCfg := skopeoInspect(t, "oci:"+layout+":"+c.tag)
			_, cfg := skopeoInspect(t, "oci:"+out+":latest")
			if !slices.Equal(cfg.Config.Entrypoint, srcCfg.Config.Entrypoint) || !slices.Equal(cfg.Config.Cmd, srcCfg.Config.Cmd) ||
				cfg.Config.WorkingDir != srcCfg.Config.WorkingDir || !slices.Equal(cfg.Config.Env, srcCfg.Config.Env) ||
				len(cfg.Config.ExposedPorts) != len(srcCfg.Config.ExposedPorts) || len(cfg.Config.Volumes) != len(srcCfg.Config.Volumes) ||
				cfg.Config.StopSignal != srcCfg.Config.StopSignal || cfg.Config.Labels["app"] != srcCfg.Config.Labels["app"] {
				t.Errorf("the config changed:\n  source %+v\n  slim   %+v", srcCfg.Config, cfg.Config)
			}
			if len(cfg.History) != 1 || !strings.HasPrefix(cfg.History[0].CreatedBy, "scratchpack slim sha256:") {
				t.Errorf("history %+v", cfg.History)
			}
			var manifest struct{ Annotations map[string]string }
			if err := json.Unmarshal([]byte(hostTool(t, "skopeo", "inspect", "--raw", "oci:"+out+":latest")), &manifest); err != nil {
				t.Fatal(err)
			}
			src := strings.TrimSpace(hostTool(t, "skopeo", "inspect", "--format", "{{.Digest}}", "oci:"+layout+":"+c.tag))
			if manifest.Annotations["dev.scratchpack.slim.source.digest"] != src {
				t.Errorf("annotations %v, want the source digest %s", manifest.Annotations, src)
			}
			b, _ := umociUnpack(t, out+":latest")
			root := filepath.Join(b, "rootfs")
			if got := mustRunInRoot(t, root, nil, c.argv...); got != c.want {
				t.Errorf("the workload printed %q, want %q", got, c.want)
			}
			var kept, all int64
			filepath.Walk(root, func(_ string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					kept += fi.Size()
				}
				return nil
			})
			filepath.Walk(tree, func(_ string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					all += fi.Size()
				}
				return nil
			})
			t.Logf("%s: the slim root holds %d of the source's %d bytes (%.1f%%)", c.tag, kept, all, 100*float64(kept)/float64(all))
			if kept*2 > all {
				t.Errorf("%s: the slim root holds %d of %d bytes: not a small part", c.tag, kept, all)
			}
		})
	}
	if after := treeSnapshot(t, layout); len(after) != len(before) {
		t.Errorf("slim changed the source layout (%d paths, then %d)", len(before), len(after))
	}
	if code, _, stderr := scratchpack(t, "slim", "oci:"+layout+":nosuchtag", "-o", "oci:"+filepath.Join(dir, "x")); code == 0 || !strings.Contains(stderr, "nosuchtag") {
		t.Errorf("a missing tag: exit %d, %s", code, stderr)
	}
}

// buildDigestOf runs a scratchpack command that prints one digest.
func buildDigestOf(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := scratchpack(t, args...)
	if code != 0 || !strings.HasPrefix(stdout, "sha256:") {
		t.Fatalf("scratchpack %q: exit %d, %q\n%s", args, code, stdout, stderr)
	}
	return strings.TrimSpace(stdout)
}
