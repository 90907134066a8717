package collector_test

import (
	"context"
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
		img, err := collector.BuildImage(context.Background(), t, collector.ImageConfig{
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
	// gzip sha256:761e75fbf763fd2476a382701b893192ce85dc44439a22bb995f3205fbbcbf92
	// zstd sha256:ab862ad5025dd6c4f5f4a446451c1c8127ab58a3c5a383fb1e5d4ccc1d76971e
}
