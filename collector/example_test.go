package collector_test

import (
	"fmt"
	"io/fs"
	"log"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scratchpack/scratchpack/collector"
)

// The digest is pinned: the same tree and config give the same image on any machine, whoever runs it and
// whenever.
func ExampleBuildImage() {
	t := collector.NewTree()
	for _, e := range []collector.Entry{
		{Path: "/bin/hello", Kind: collector.KindFile, Mode: 0o755, Data: []byte("#!/bin/sh\necho hello\n")},
		{Path: "/bin/sh", Kind: collector.KindSymlink, Target: "hello"},
		{Path: "/etc/passwd", Kind: collector.KindFile, Mode: 0o644, Data: []byte("root:x:0:0:root:/:/bin/sh\n")},
		{Path: "/tmp", Kind: collector.KindDir, Mode: fs.ModeSticky | 0o777},
	} {
		if err := t.Add(e); err != nil {
			log.Fatal(err)
		}
	}
	for _, compression := range []string{"gzip", "zstd"} {
		img, err := collector.BuildImage(t, collector.ImageConfig{
			Entrypoint:  []string{"/bin/hello"},
			Env:         []string{"PATH=/bin"},
			Platform:    v1.Platform{OS: "linux", Architecture: "amd64"},
			Created:     time.Unix(1700000000, 0), // SOURCE_DATE_EPOCH=1700000000
			Compression: compression,
		})
		if err != nil {
			log.Fatal(err)
		}
		digest, err := img.Digest()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(compression, digest)
	}
	// Output:
	// gzip sha256:e170dc92e632b48308386f95684307402e45ebafd8b69cd60e37a6b411ba4a0d
	// zstd sha256:9b66217448946d9c4e9c2331781491e9a3908fa4397d8fa33cf935cff10ef36c
}
