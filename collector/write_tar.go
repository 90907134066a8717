package collector

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// WriteTar writes the tree as a reproducible tar stream: entries in Tree.Entries order, paths relative (no
// leading "/", directories ending in "/"), the root "/" itself left out, each entry's uid/gid (0:0 unless
// the root kept others), no user or group names, every mtime = mtime, PAX records only where USTAR cannot
// hold a field or for file capabilities, no hard links. It is what `docker import` and an image layer take.
func WriteTar(ctx context.Context, t *Tree, w io.Writer, mtime time.Time) error {
	tw := tar.NewWriter(w)
	mtime = mtime.UTC().Truncate(time.Second)
	for _, e := range t.Entries() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Path == "/" {
			continue
		}
		name := strings.TrimPrefix(e.Path, "/")
		hdr := &tar.Header{Name: name, Mode: tarMode(e.Mode), Uid: e.UID, Gid: e.GID, ModTime: mtime, Format: tar.FormatUnknown}
		switch e.Kind {
		case KindDir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		case KindSymlink:
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, e.Target, 0o777
		case KindFile:
			hdr.Typeflag, hdr.Size = tar.TypeReg, e.Size
			if e.Capability != "" {
				hdr.PAXRecords = map[string]string{"SCHILY.xattr." + CapabilityXattr: e.Capability}
			}
		default:
			return fmt.Errorf("%s: cannot write a %s to a tar archive", e.Path, e.Kind)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing %s to the archive: %w", e.Path, err)
		}
		if e.Kind == KindFile {
			if err := copyEntry(ctx, tw, e); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// copyEntry copies a file entry's content to w, checking it still has the size the tree recorded (a file
// that changed under us must not produce a corrupt archive).
func copyEntry(ctx context.Context, w io.Writer, e *Entry) error {
	rc, err := e.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.Copy(w, io.LimitReader(ctxReader{ctx, rc}, e.Size))
	if err != nil {
		return fmt.Errorf("copying %s: %w", e.Path, err)
	}
	if n != e.Size {
		return fmt.Errorf("copying %s: %s changed while being read (%d of %d bytes)", e.Path, e.Source, n, e.Size)
	}
	return nil
}

// tarMode turns permission and special bits into tar's mode word (c_ISUID, c_ISGID, c_ISVTX).
func tarMode(m fs.FileMode) int64 {
	v := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// ctxReader stops reading once ctx is done, so that a large file does not outlive a cancelled build.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
