package collector

import (
	"context"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestLayerCache(t *testing.T) {
	dir := t.TempDir()
	cache := &LayerCache{Dir: filepath.Join(dir, "cache")}
	tr := testTree(t, dir)
	uncached := mustDigest(t, mustBuild(t, tr, ImageConfig{Platform: amd64}))
	build := func() string {
		t.Helper()
		return mustDigest(t, mustBuild(t, tr, ImageConfig{Platform: amd64, LayerCache: cache})).String()
	}
	if got := build(); got != uncached.String() {
		t.Errorf("a build through an empty cache gave %s, without one %s", got, uncached)
	}
	blobs, _ := filepath.Glob(filepath.Join(cache.Dir, "*.blob"))
	if len(blobs) != 1 {
		t.Fatalf("the cache holds %v, want one blob", blobs)
	}
	// The second build takes the cached blob: make it recognisable by its time.
	old := time.Unix(1, 0)
	if err := os.Chtimes(blobs[0], old, old); err != nil {
		t.Fatal(err)
	}
	if got := build(); got != uncached.String() {
		t.Errorf("a build from the cache gave %s, want %s", got, uncached)
	}
	if st, err := os.Stat(blobs[0]); err != nil || !st.ModTime().Equal(old) {
		t.Errorf("the cached blob was written again: %v, %v", st, err)
	}
	// A damaged blob is compressed again (and replaced), never used.
	if err := os.WriteFile(blobs[0], []byte("not a layer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := build(); got != uncached.String() {
		t.Errorf("a build over a damaged cache gave %s, want %s", got, uncached)
	}
	if st, err := os.Stat(blobs[0]); err != nil || st.Size() < 20 {
		t.Errorf("the damaged blob was not replaced: %v, %v", st, err)
	}
	// Another tree is another entry.
	if err := tr.Add(Entry{Path: "/etc/more", Kind: KindFile, Mode: 0o644, Data: []byte("more")}); err != nil {
		t.Fatal(err)
	}
	build()
	if blobs, _ := filepath.Glob(filepath.Join(cache.Dir, "*.blob")); len(blobs) != 2 {
		t.Errorf("the cache holds %d blobs, want 2", len(blobs))
	}
}

// A push to a second repository of the same registry mounts the layers the cache saw pushed to the first,
// instead of sending them again.
func TestLayerCacheMounts(t *testing.T) {
	dir := t.TempDir()
	cache := &LayerCache{Dir: filepath.Join(dir, "cache")}
	img := mustBuild(t, testTree(t, dir), ImageConfig{Platform: amd64, LayerCache: cache})
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var mu sync.Mutex
	var mounts, uploads int
	host := serveRegistry(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The in-memory registry keeps blobs for every repository at once; a real one (Debian's) links
		// them per repository: the second repository must not have the layer until it is mounted.
		if r.Method == http.MethodHead && strings.HasPrefix(r.URL.Path, "/v2/second/blobs/") {
			http.Error(w, "not here", http.StatusNotFound)
			return
		}
		mu.Lock()
		switch {
		case r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" && r.URL.Query().Get("from") != "":
			mounts++
		case (r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.Contains(r.URL.Path, "/blobs/uploads/"):
			uploads++
		}
		mu.Unlock()
		reg.ServeHTTP(w, r)
	}))
	push := func(repo string) (int, int) {
		t.Helper()
		mu.Lock()
		mounts, uploads = 0, 0
		mu.Unlock()
		s := &RegistrySink{Ref: host + "/" + repo + ":1", Cache: cache}
		if _, err := s.Publish(context.Background(), Artifact{Image: img}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return mounts, uploads
	}
	if m, u := push("first"); m != 0 || u == 0 {
		t.Fatalf("the first push mounted %d and uploaded %d blobs", m, u)
	}
	// This registry does not mount (it answers with an upload, which the push then makes); Debian's does
	// (bench/layers.sh).
	if m, _ := push("second"); m != 1 {
		t.Errorf("the second push asked for %d mounts, want 1 (its one layer, from the first repository)", m)
	}
	ref, err := name.ParseReference(host+"/second:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if mustDigest(t, got) != mustDigest(t, img) {
		t.Error("the second repository holds another image")
	}
}
