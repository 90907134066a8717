package collector

import (
	"compress/gzip"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestGzipLayerIndependentOfCPUs: the parallel gzip layer's bytes depend on its block size alone, so the same
// tree gives the same digest on a machine with one CPU as with many. The tree spans several blocks, and the
// layer must still be one gzip stream that the standard library reads back to the tar.
func TestGzipLayerIndependentOfCPUs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 5*gzipBlock+12345)
	words := []string{"alpha ", "beta ", "gamma ", "delta\n", "\x00\x01\x02"}
	for i := 0; i < len(data); {
		i += copy(data[i:], words[rng.IntN(len(words))])
	}
	tr := NewTree()
	if err := tr.Add(Entry{Path: "/data", Kind: KindFile, Mode: 0o644, Data: data}); err != nil {
		t.Fatal(err)
	}
	digests := map[int]string{}
	prev := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(prev)
	for _, procs := range []int{1, 2, 7} {
		runtime.GOMAXPROCS(procs)
		img := mustBuild(t, tr, ImageConfig{Platform: amd64})
		ls, err := img.Layers()
		if err != nil || len(ls) != 1 {
			t.Fatalf("layers: %v, %v", ls, err)
		}
		d, err := ls[0].Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests[procs] = d.String()
		rc, err := ls[0].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, zr)
		if err != nil || n < int64(len(data)) {
			t.Fatalf("GOMAXPROCS=%d: the layer decompresses to %d bytes, %v", procs, n, err)
		}
		rc.Close()
	}
	if digests[1] != digests[2] || digests[2] != digests[7] {
		t.Errorf("the layer's digest depends on GOMAXPROCS: %v", digests)
	}
}
