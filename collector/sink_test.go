package collector

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestSinks writes the same tree through every sink NewSink makes and reads each result back with the
// reader of its format.
func TestSinks(t *testing.T) {
	tr := sampleTree(t)
	img, err := BuildImage(context.Background(), tr, ImageConfig{Platform: amd64, Entrypoint: []string{"/usr/bin/prog"}})
	if err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	configID, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	host := newRegistry(t, nil)

	// hostsOf reads back the content of etc/hosts in each kind of output.
	fromTar := func(r io.Reader) string {
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err != nil {
				return ""
			}
			if h.Name == "etc/hosts" {
				b, _ := io.ReadAll(tr)
				return string(b)
			}
		}
	}
	fromImage := func(img v1.Image) string {
		ls, err := img.Layers()
		if err != nil || len(ls) != 1 {
			return ""
		}
		rc, err := ls[0].Uncompressed()
		if err != nil {
			return ""
		}
		defer rc.Close()
		return fromTar(rc)
	}
	const hosts = "127.0.0.1 localhost\n"
	for _, tc := range []struct {
		dest       string
		wantType   Sink
		wantsImage bool
		want       string // what Publish returns: "path", "digest" or "config"
		read       func(t *testing.T, path string) string
	}{
		{"dir:out", &DirSink{}, false, "path", func(t *testing.T, p string) string {
			b, _ := os.ReadFile(filepath.Join(p, "etc/hosts"))
			return string(b)
		}},
		{"tar:out.tar", &TarSink{}, false, "path", func(t *testing.T, p string) string {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			return fromTar(f)
		}},
		{"cpio:out.cpio", &CPIOSink{}, false, "path", func(t *testing.T, p string) string {
			data, _ := os.ReadFile(p)
			if bytes.Contains(data, []byte("etc/hosts\x00")) && bytes.Contains(data, []byte(hosts)) {
				return hosts
			}
			return ""
		}},
		{"oci:layout:v1", &LayoutSink{}, true, "digest", func(t *testing.T, p string) string {
			idx, err := layout.ImageIndexFromPath(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := idx.Image(digest)
			if err != nil {
				t.Fatal(err)
			}
			return fromImage(got)
		}},
		{"docker-archive:out.tar:x/y:1", &ArchiveSink{}, true, "config", func(t *testing.T, p string) string {
			tag, _ := name.NewTag("x/y:1")
			got, err := tarball.ImageFromPath(p, &tag)
			if err != nil {
				t.Fatal(err)
			}
			return fromImage(got)
		}},
		{"docker://" + host + "/scratch/x:1", &RegistrySink{}, true, "digest", func(t *testing.T, _ string) string {
			ref, _ := name.ParseReference(host+"/scratch/x:1", name.Insecure)
			got, err := remote.Image(ref)
			if err != nil {
				t.Fatal(err)
			}
			return fromImage(got)
		}},
	} {
		t.Run(tc.dest, func(t *testing.T) {
			d, err := ParseDest(tc.dest)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if d.Path != "" {
				d.Path = filepath.Join(dir, d.Path)
			}
			s, err := NewSink(d, SinkOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := typeName(s), typeName(tc.wantType); got != want {
				t.Fatalf("NewSink(%s) is a %s, want a %s", tc.dest, got, want)
			}
			if s.WantsImage() != tc.wantsImage {
				t.Errorf("WantsImage = %v, want %v", s.WantsImage(), tc.wantsImage)
			}
			if err := s.Check(); err != nil {
				t.Fatalf("Check before writing: %v", err)
			}
			a := Artifact{Tree: tr, MTime: time.Unix(1700000000, 0)}
			if s.WantsImage() {
				a.Image = img
			}
			out, err := s.Publish(context.Background(), a)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"path": d.Path, "digest": digest.String(), "config": configID.String()}[tc.want]
			if out != want {
				t.Errorf("Publish returned %q, want %q", out, want)
			}
			if got := tc.read(t, d.Path); got != hosts {
				t.Errorf("etc/hosts read back from %s: %q, want %q", tc.dest, got, hosts)
			}
			if d.Path == "" {
				return
			}
			// Written once, the output is refused without force, before any work.
			if err := s.Check(); !errors.Is(err, ErrExists) {
				t.Errorf("Check over the written output: %v, want ErrExists", err)
			}
			if _, err := s.Publish(context.Background(), a); !errors.Is(err, ErrExists) {
				t.Errorf("Publish over the written output: %v, want ErrExists", err)
			}
		})
	}
	if _, err := (&LayoutSink{Path: filepath.Join(t.TempDir(), "x")}).Publish(context.Background(), Artifact{Tree: tr}); err == nil {
		t.Error("an image sink published without an image")
	}
}

func typeName(s Sink) string {
	switch s.(type) {
	case *DirSink:
		return "DirSink"
	case *TarSink:
		return "TarSink"
	case *CPIOSink:
		return "CPIOSink"
	case *LayoutSink:
		return "LayoutSink"
	case *ArchiveSink:
		return "ArchiveSink"
	case *RegistrySink:
		return "RegistrySink"
	}
	return "unknown"
}

// TestMultiSink writes one build to a directory and an OCI layout: both checked before any work, the image
// made once, the results one per line in order; a failing output names itself.
func TestMultiSink(t *testing.T) {
	tr := sampleTree(t)
	img, err := BuildImage(context.Background(), tr, ImageConfig{Platform: amd64})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root, layoutDir := filepath.Join(dir, "root"), filepath.Join(dir, "layout")
	m := Multi(&DirSink{Path: root}, &LayoutSink{Path: layoutDir, Tag: "v1"})
	if !m.WantsImage() {
		t.Error("WantsImage is false although the layout wants one")
	}
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	out, err := m.Publish(context.Background(), Artifact{Tree: tr, Image: img})
	if err != nil {
		t.Fatal(err)
	}
	if want := root + "\n" + mustDigest(t, img).String(); out != want {
		t.Errorf("Publish = %q, want %q", out, want)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/hosts")); err != nil {
		t.Errorf("the directory output: %v", err)
	}
	if _, err := layout.ImageIndexFromPath(layoutDir); err != nil {
		t.Errorf("the layout output: %v", err)
	}
	if err := m.Check(); !errors.Is(err, ErrExists) {
		t.Errorf("Check over written outputs: %v, want ErrExists", err)
	}
	bad := Multi(&DirSink{Path: filepath.Join(dir, "new")}, &TarSink{Path: filepath.Join(dir, "missing", "x.tar")})
	if _, err := bad.Publish(context.Background(), Artifact{Tree: tr}); err == nil || !strings.Contains(err.Error(), "tar:"+filepath.Join(dir, "missing")) {
		t.Errorf("a failing output: %v, want an error naming it", err)
	}
}

// TestPushNamesTheStalledBlob: a registry that stops reading a layer's upload makes the push fail within the
// request timeout, naming the layer being sent and how much of it went (issue 9 #7).
func TestPushNamesTheStalledBlob(t *testing.T) {
	big := filepath.Join(t.TempDir(), "random")
	data := make([]byte, 16<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tr := NewTree()
	if err := tr.Add(Entry{Path: "/big", Kind: KindFile, Mode: 0o644, Source: hostSource(t, big)}); err != nil {
		t.Fatal(err)
	}
	img, err := BuildImage(context.Background(), tr, ImageConfig{Platform: amd64})
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	layerDigest, _ := layers[0].Digest()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	stop := make(chan struct{})
	defer close(stop)
	host := serveRegistry(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch || r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && r.ContentLength != 0 {
			select { // read nothing, answer nothing
			case <-stop:
			case <-r.Context().Done():
			}
			return
		}
		reg.ServeHTTP(w, r)
	}))
	start := time.Now()
	_, err = push(context.Background(), img, host+"/stall/x:1", false, nil, time.Second, false, nil)
	if err == nil {
		t.Fatal("the push succeeded")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("it took %v to give up", d)
	}
	if !strings.Contains(err.Error(), "while sending layer "+layerDigest.String()) {
		t.Errorf("error %v does not name the layer being sent (%s)", err, layerDigest)
	}
}
