package collector

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/cpio"
)

// WriteCPIO writes the tree as a newc cpio archive, the format of a Linux initramfs: one record per entry
// in Tree.Entries order (the root "/" itself left out, names relative), each entry's uid/gid, every mtime = mtime
// (whole seconds, 1970 to 2106), inode numbers counted from 1 in that order, no hard links, then the
// trailer. The same tree and mtime give the same bytes. newc holds files up to 4 GiB.
func WriteCPIO(ctx context.Context, t *Tree, w io.Writer, mtime time.Time) error {
	secs := mtime.Unix()
	if secs < 0 || secs > math.MaxUint32 {
		return fmt.Errorf("writing a cpio archive: time %s does not fit in newc's 32-bit mtime", mtime.UTC())
	}
	bw := bufio.NewWriter(w)
	rw := cpio.Newc.Writer(bw)
	var ino uint64
	for _, e := range t.Entries() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Path == "/" {
			continue
		}
		ino++
		if err := writeCPIORecord(ctx, rw, e, ino, uint64(secs)); err != nil {
			return err
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return fmt.Errorf("writing the cpio trailer: %w", err)
	}
	return bw.Flush()
}

func writeCPIORecord(ctx context.Context, rw cpio.RecordWriter, e *Entry, ino, mtime uint64) error {
	info := cpio.Info{
		Ino:   ino,
		UID:   uint64(e.UID),
		GID:   uint64(e.GID),
		NLink: 1,
		MTime: mtime,
		Name:  strings.TrimPrefix(e.Path, "/"),
	}
	var content io.ReaderAt
	switch e.Kind {
	case KindDir:
		info.Mode = cpio.S_IFDIR | uint64(tarMode(e.Mode))
		info.NLink = 2
	case KindSymlink:
		info.Mode = cpio.S_IFLNK | 0o777
		info.FileSize = uint64(len(e.Target))
		content = strings.NewReader(e.Target)
	case KindFile:
		if e.Size < 0 || e.Size > math.MaxUint32 {
			return fmt.Errorf("%s: %d bytes do not fit in a newc cpio archive (4 GiB at most)", e.Path, e.Size)
		}
		info.Mode = cpio.S_IFREG | uint64(tarMode(e.Mode))
		info.FileSize = uint64(e.Size)
		rc, err := e.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		ra, ok := rc.(io.ReaderAt)
		if !ok {
			data, err := io.ReadAll(io.LimitReader(rc, e.Size))
			if err != nil {
				return fmt.Errorf("reading %s: %w", e.Path, err)
			}
			ra = bytes.NewReader(data)
		}
		// A section, not the file itself: the cpio writer would close a Closer itself.
		content = ctxReaderAt{ctx, io.NewSectionReader(ra, 0, e.Size)}
	default:
		return fmt.Errorf("%s: cannot write a %s to a cpio archive", e.Path, e.Kind)
	}
	if err := rw.WriteRecord(cpio.Record{ReaderAt: content, Info: info}); err != nil {
		return fmt.Errorf("writing %s to the cpio archive: %w", e.Path, err)
	}
	return nil
}

// WriteCPIOFile writes the tree as a newc initramfs archive at dest (see WriteCPIO), with the rules of
// replaceAtomically for an existing dest and for failures.
func WriteCPIOFile(ctx context.Context, t *Tree, dest string, mtime time.Time, force bool) error {
	return writeFileAtomically(dest, force, func(w io.Writer) error { return WriteCPIO(ctx, t, w, mtime) })
}

// ctxReaderAt stops reading once ctx is done.
type ctxReaderAt struct {
	ctx context.Context
	r   io.ReaderAt
}

func (c ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.ReadAt(p, off)
}
