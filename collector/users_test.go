package collector

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/google/go-cmp/cmp"
)

// TestUsers: --user NAME gets the root's ids when it has NAME, else NonrootID; its home exists and is owned
// by it (not a system account's home taken over); the working directory is owned by the user.
func TestUsers(t *testing.T) {
	type owned struct {
		Path     string
		UID, GID int
	}
	for _, tc := range []struct {
		name, user  string
		wantPasswd  string
		wantOwned   []owned
		wantMissing []string
	}{
		{"new name", "app", "app:x:65532:65532::/home/app:/sbin/nologin", []owned{{"/home/app", 65532, 65532}, {"/work", 65532, 65532}}, nil},
		{"name with a group id", "app:7", "app:x:65532:7::/home/app:/sbin/nologin", []owned{{"/home/app", 65532, 7}, {"/work", 65532, 7}}, nil},
		{"numeric", "1234:1234", "", []owned{{"/work", 1234, 1234}}, []string{"/home"}},
		{"root", "root", "root:x:0:0:", []owned{{"/work", 0, 0}}, []string{"/home"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Build(context.Background(), Spec{
				Root: hostRoot(t), Programs: []Program{{Path: "/bin/true"}}, WorkDir: "/work",
				Rules:   RuleOptions{Base: BaseFiles{User: tc.user, Certs: "never"}},
				Explain: io.Discard,
			})
			if err != nil {
				t.Fatal(err)
			}
			passwd := string(res.Tree.Get("/etc/passwd").Data)
			if !strings.Contains(passwd, tc.wantPasswd) {
				t.Errorf("/etc/passwd lacks %q:\n%s", tc.wantPasswd, passwd)
			}
			for _, w := range tc.wantOwned {
				e := res.Tree.Get(w.Path)
				if e == nil || e.Kind != KindDir {
					t.Errorf("%s: %+v, want a directory", w.Path, e)
					continue
				}
				if diff := cmp.Diff(w, owned{e.Path, e.UID, e.GID}); diff != "" {
					t.Errorf("owners (-want +got):\n%s", diff)
				}
			}
			for _, m := range tc.wantMissing {
				if e := res.Tree.Get(m); e != nil {
					t.Errorf("%s is in the image: %+v", m, e)
				}
			}
		})
	}

	t.Run("a system account's home is not taken over", func(t *testing.T) {
		if _, err := os.Stat("/usr/sbin"); err != nil {
			t.Skip("no /usr/sbin")
		}
		data, _ := os.ReadFile("/etc/passwd")
		if !strings.Contains(string(data), "\ndaemon:x:1:1:daemon:/usr/sbin:") {
			t.Skip("this machine's daemon account is not Debian's")
		}
		res, err := Build(context.Background(), Spec{
			Root: hostRoot(t), Programs: []Program{{Path: "/usr/sbin/nologin"}},
			Rules: RuleOptions{Base: BaseFiles{User: "daemon", Certs: "never"}}, Explain: io.Discard,
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(res.Tree.Get("/etc/passwd").Data), "daemon:x:1:1::/usr/sbin:") {
			t.Errorf("daemon's ids are not the root's:\n%s", res.Tree.Get("/etc/passwd").Data)
		}
		if e := res.Tree.Get("/usr/sbin"); e == nil || e.UID != 0 {
			t.Errorf("/usr/sbin: %+v, want it root's", e)
		}
	})
}

// TestImageConfigFields: the config has PATH unless one is given, the author, one history entry per layer
// naming image paths; an image on a base carries the base.name and base.digest annotations.
func TestImageConfigFields(t *testing.T) {
	tr := sampleTree(t)
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers"},
		Config: v1.Config{Env: []string{"LANG=C.UTF-8"}}})
	if err != nil {
		t.Fatal(err)
	}
	baseDigest := mustDigest(t, base)
	for _, tc := range []struct {
		name            string
		cfg             ImageConfig
		wantEnv         []string
		wantAnnotations map[string]string
	}{
		{"PATH by default", ImageConfig{Platform: amd64}, []string{"PATH=" + DefaultPath}, nil},
		{"PATH given", ImageConfig{Platform: amd64, Env: []string{"PATH=/bin", "TZ=UTC"}}, []string{"PATH=/bin", "TZ=UTC"}, nil},
		{"on a base", ImageConfig{Platform: amd64, Base: base, BaseName: "registry.example/debian:12"},
			[]string{"PATH=" + DefaultPath, "LANG=C.UTF-8"},
			map[string]string{baseNameAnnotation: "registry.example/debian:12", baseDigestAnnotation: baseDigest.String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.CreatedBy, tc.cfg.Author = "scratchpack build /app/bin/svc", "scratchpack"
			img, err := BuildImage(context.Background(), tr, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantEnv, cf.Config.Env); diff != "" {
				t.Errorf("Env (-want +got):\n%s", diff)
			}
			if cf.Author != "scratchpack" {
				t.Errorf("author %q", cf.Author)
			}
			layers, _ := img.Layers()
			if len(cf.History) != len(layers) || cf.History[len(cf.History)-1].CreatedBy != "scratchpack build /app/bin/svc" {
				t.Errorf("history %+v for %d layers, want one entry per layer, the last naming the image path", cf.History, len(layers))
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantAnnotations, m.Annotations); diff != "" {
				t.Errorf("manifest annotations (-want +got):\n%s", diff)
			}
		})
	}
}
