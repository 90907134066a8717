package collector

import (
	"os"
	"path/filepath"
	"testing"
	"time"
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
