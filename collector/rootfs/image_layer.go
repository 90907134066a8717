package rootfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// layerFile is what a hard link may name: a non-directory entry of the layer being read, kept or not.
type layerFile struct {
	ord     int         // its header's position in the layer's stream
	typ     fs.FileMode // type bits
	size    int64
	offset  int64 // in the spool, when spooled
	spooled bool
	target  string // a symbolic link's
}

// layerReader applies one layer.
type layerReader struct {
	b      *builder
	li     int // counted from the top
	digest string

	// What this layer hides in lower layers, applied once it is read: a layer never hides its own entries.
	whiteouts, opaques []string
	files              map[string]layerFile
	// Kept hard links to a file this layer has but that an upper layer hides, so that its content was not
	// spooled: their headers' positions, for a second read of the layer.
	pending map[int][]*entry
}

func (b *builder) layer(l v1.Layer, li int) error {
	d, err := l.Digest()
	if err != nil {
		return fmt.Errorf("layer %d from the top: %w", li, err)
	}
	lr := &layerReader{b: b, li: li, digest: d.String(), files: map[string]layerFile{}, pending: map[int][]*entry{}}
	if err := lr.read(l); err != nil {
		return fmt.Errorf("layer %s: %w", lr.digest, err)
	}
	if len(lr.pending) > 0 {
		if err := lr.readPending(l); err != nil {
			return fmt.Errorf("layer %s: %w", lr.digest, err)
		}
	}
	for _, w := range lr.whiteouts {
		b.hidden[w] = true
	}
	for _, o := range lr.opaques {
		b.opaque[o] = true
	}
	return nil
}

func (lr *layerReader) read(l v1.Layer) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("opening: %w", err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	last := ""
	for ord := 0; ; ord++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if last == "" {
				return fmt.Errorf("reading the first entry: %w", err)
			}
			return fmt.Errorf("reading the entry after %s: %w", last, err)
		}
		last = h.Name
		if err := lr.entry(tr, h, ord); err != nil {
			return err
		}
	}
	// Read what follows the end-of-archive marker too: the digest is checked at the end of the stream.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("verifying: %w", err)
	}
	return nil
}

// entry applies one header of the layer.
func (lr *layerReader) entry(tr *tar.Reader, h *tar.Header, ord int) error {
	if h.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if lr.b.full() {
		return fmt.Errorf("%s: %w: more than %d paths", h.Name, ErrTooLarge, lr.b.maxEntries)
	}
	name, err := cleanName(h.Name)
	if err != nil {
		return err
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	if base == opaqueWhiteout {
		lr.opaques = append(lr.opaques, dir)
		return nil
	}
	if strings.HasPrefix(base, whiteoutMetaPrefix) {
		return nil // aufs metadata (.wh..wh.aufs, the .wh..wh.plnk directory), as docker ignores it
	}
	if hidden, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
		if hidden == "" || hidden == "." || hidden == ".." {
			return fmt.Errorf("entry %s: a whiteout that names nothing", h.Name)
		}
		lr.whiteouts = append(lr.whiteouts, joinName(dir, hidden))
		return nil
	}

	// The type comes from the type flag alone, whatever type bits the mode field claims.
	perm := h.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	e := &entry{layer: lr.li, meta: Meta{UID: h.Uid, GID: h.Gid, ModTime: h.ModTime, Layer: lr.digest,
		Xattrs: xattrsOf(h)}}
	var lf layerFile // what a later hard link to this name gets
	switch h.Typeflag {
	case tar.TypeReg, '\x00', tar.TypeCont, tar.TypeGNUSparse:
		e.mode, e.meta.Size = perm, h.Size
		lf = layerFile{ord: ord, size: h.Size}
	case tar.TypeLink:
		target, err := cleanName(h.Linkname)
		if err != nil {
			return fmt.Errorf("hard link %s: %w", h.Name, err)
		}
		t, ok := lr.files[target]
		if !ok {
			return fmt.Errorf("hard link %s: its target %s is not a file of the layer", h.Name, h.Linkname)
		}
		lf = t
		e.mode, e.target, e.meta.Size = t.typ|perm, t.target, t.size
		if t.typ == fs.ModeSymlink {
			e.meta.Size = int64(len(t.target))
		}
	case tar.TypeSymlink:
		e.mode, e.target, e.meta.Size = fs.ModeSymlink|perm, h.Linkname, int64(len(h.Linkname))
		lf = layerFile{ord: ord, typ: fs.ModeSymlink, target: h.Linkname}
	case tar.TypeDir:
		e.mode = fs.ModeDir | perm
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := fs.ModeNamedPipe
		switch h.Typeflag {
		case tar.TypeChar:
			typ = fs.ModeDevice | fs.ModeCharDevice
		case tar.TypeBlock:
			typ = fs.ModeDevice
		}
		e.mode = typ | perm
		lf = layerFile{ord: ord, typ: typ}
	default:
		return fmt.Errorf("entry %s: unsupported type %q", h.Name, h.Typeflag)
	}
	if name == "." && !e.mode.IsDir() {
		return fmt.Errorf("entry %s: the root is not a directory", h.Name)
	}

	// What aufs put under .wh..wh.plnk is there for hard links to name, never to be seen.
	aufsLink := strings.HasPrefix(name, whiteoutMetaPrefix) || strings.Contains(name, "/"+whiteoutMetaPrefix)
	kept := !aufsLink && lr.b.visible(name, lr.li, e.mode.IsDir())
	if kept && e.mode.IsRegular() {
		switch {
		case h.Typeflag != tar.TypeLink:
			off, err := lr.b.spool.copyFrom(tr, h.Size, h.Name)
			if err != nil {
				return err
			}
			lf.offset, lf.spooled = off, true
			e.meta.Offset = off
		case lf.spooled:
			e.meta.Offset = lf.offset
		default:
			lr.pending[lf.ord] = append(lr.pending[lf.ord], e)
		}
	}
	if !e.mode.IsDir() {
		lr.files[name] = lf
	} else {
		delete(lr.files, name)
	}
	if kept {
		lr.b.keep(name, e, lr.li)
	}
	return nil
}

// readPending reads the layer again for the content of the files that kept hard links name but that were
// hidden when met: a hard link always names an earlier entry, so it could not be known then.
func (lr *layerReader) readPending(l v1.Layer) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("opening again: %w", err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for ord := 0; len(lr.pending) > 0; ord++ {
		h, err := tr.Next()
		if err == io.EOF {
			return errors.New("reading again: the layer is shorter than it was")
		}
		if err != nil {
			return fmt.Errorf("reading again: %w", err)
		}
		links, ok := lr.pending[ord]
		if !ok {
			continue
		}
		delete(lr.pending, ord)
		if h.Size != links[0].meta.Size {
			return fmt.Errorf("reading %s again: its size is %d, was %d", h.Name, h.Size, links[0].meta.Size)
		}
		off, err := lr.b.spool.copyFrom(tr, h.Size, h.Name)
		if err != nil {
			return err
		}
		for _, e := range links {
			e.meta.Offset = off
		}
	}
	return nil
}
