package collector

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// gzipBlock is the size of the blocks a gzip layer is compressed in, in parallel. 1 MiB costs under 0.1%
// of size against one stream (a sync marker and a dictionary restart per block).
const gzipBlock = 1 << 20

// spooledLayer is the image layer of a tree, compressed once into an unlinked temporary file while both
// digests are computed in the same pass (the diff ID over the tar stream, the digest over the compressed
// bytes). Memory stays small whatever the layer's size: a push or a layout reads the file back. The file
// is freed when the layer is garbage-collected or the process ends.
type spooledLayer struct {
	f              *os.File
	size           int64
	digest, diffID v1.Hash
	mediaType      types.MediaType
}

// newSpooledLayer writes the tree as a tar stream through gzip (level) or zstd (zstdLevel) into a temporary
// file of dir ("" for the system's).
func newSpooledLayer(ctx context.Context, t *Tree, mtime time.Time, mediaType types.MediaType, level int, dir string) (*spooledLayer, error) {
	f, err := os.CreateTemp(dir, ".scratchpack-layer-")
	if err != nil {
		return nil, fmt.Errorf("making the layer's spool file: %w", err)
	}
	os.Remove(f.Name()) // unlinked now: nothing is left behind, whatever happens
	l := &spooledLayer{f: f, mediaType: mediaType}
	if err := l.fill(ctx, t, mtime, level); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

func (l *spooledLayer) fill(ctx context.Context, t *Tree, mtime time.Time, level int) error {
	compressed := sha256.New()
	counted := &countWriter{w: io.MultiWriter(l.f, compressed)}
	var cw io.WriteCloser
	switch l.mediaType {
	case types.OCILayerZStd:
		zw, err := zstd.NewWriter(counted, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
		if err != nil {
			return err
		}
		cw = zw
	default:
		gw, err := pgzip.NewWriterLevel(counted, level)
		if err != nil {
			return err
		}
		// Blocks of gzipBlock bytes compress on up to four CPUs at once (each block in flight holds a few
		// MiB: the build's memory bound), each with the previous block's last 32 KiB as its dictionary: the
		// bytes depend on the block size alone, not on how many run at once, so digests are the same on any
		// machine (TestGzipLayerIndependentOfCPUs).
		if err := gw.SetConcurrency(gzipBlock, min(4, max(2, runtime.GOMAXPROCS(0)))); err != nil {
			return err
		}
		cw = gw
	}
	uncompressed := sha256.New()
	if err := WriteTar(ctx, t, io.MultiWriter(cw, uncompressed), mtime); err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("compressing the layer: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("writing the layer's spool file: %w", err)
	}
	l.size = counted.n
	l.digest, l.diffID = hashOf(compressed), hashOf(uncompressed)
	return nil
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (l *spooledLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *spooledLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *spooledLayer) Size() (int64, error)                { return l.size, nil }
func (l *spooledLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

// Compressed reads the spool file; several readers may read at once.
func (l *spooledLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(l.f, 0, l.size)), nil
}

// Uncompressed decompresses the spool file.
func (l *spooledLayer) Uncompressed() (io.ReadCloser, error) {
	r := io.NewSectionReader(l.f, 0, l.size)
	if l.mediaType == types.OCILayerZStd {
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return gzip.NewReader(r)
}
