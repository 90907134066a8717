package collector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// LayerCache keeps compressed layers by what they compress (their diff ID) and how (media type, level,
// block size, codec): an unchanged layer is not compressed again on the next build, the layers of an
// unchanged package included. Its directory holds BLOB files and their descriptions; a cached blob is read
// whole and checked against its digest before it is used, so a damaged cache costs a compression, never a
// wrong image. Nothing is ever evicted: the directory is the user's to empty.
type LayerCache struct {
	Dir string
}

// layerCodec names the compressor whose output the cache holds: another version may compress otherwise.
const layerCodec = "pgzip-1.2.6/klauspost-compress-1.19.2"

type cachedLayer struct {
	Digest    string          `json:"digest"`
	DiffID    string          `json:"diffID"`
	Size      int64           `json:"size"`
	MediaType types.MediaType `json:"mediaType"`
}

func (c *LayerCache) key(diffID v1.Hash, mediaType types.MediaType, level int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s %s %d %d %s", diffID, mediaType, level, gzipBlock, layerCodec))
	return hex.EncodeToString(h[:])
}

// layer returns the layer of tree t: from the cache when it holds one for the tree's diff ID, else made
// and then kept there.
func (c *LayerCache) layer(ctx context.Context, t *Tree, mtime time.Time, mediaType types.MediaType, level int, spool string) (*spooledLayer, error) {
	diff := sha256.New()
	if err := WriteTar(ctx, t, diff, mtime); err != nil {
		return nil, err
	}
	diffID := hashOf(diff)
	key := c.key(diffID, mediaType, level)
	if l, err := c.get(key, diffID); err == nil {
		return l, nil
	}
	l, err := newSpooledLayer(ctx, t, mtime, mediaType, level, spool)
	if err != nil {
		return nil, err
	}
	if l.diffID != diffID {
		return nil, fmt.Errorf("the layer's content changed while it was written (diff ID %s, then %s)", diffID, l.diffID)
	}
	if err := c.put(key, l); err != nil {
		return nil, fmt.Errorf("keeping the layer in the cache %s: %w", c.Dir, err)
	}
	return l, nil
}

func (c *LayerCache) get(key string, diffID v1.Hash) (*spooledLayer, error) {
	data, err := os.ReadFile(filepath.Join(c.Dir, key+".json"))
	if err != nil {
		return nil, err
	}
	var d cachedLayer
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	digest, err := v1.NewHash(d.Digest)
	if err != nil || d.DiffID != diffID.String() {
		return nil, errors.New("a stale cache entry")
	}
	f, err := os.Open(filepath.Join(c.Dir, key+".blob"))
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil || n != d.Size || hashOf(h) != digest {
		f.Close()
		return nil, errors.New("a damaged cache entry")
	}
	return &spooledLayer{f: f, size: n, digest: digest, diffID: diffID, mediaType: d.MediaType}, nil
}

// put copies the layer's spool file into the cache, then its description: each is written beside its
// name and renamed into place, so a reader never sees half of one.
func (c *LayerCache) put(key string, l *spooledLayer) error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	desc, err := json.Marshal(cachedLayer{Digest: l.digest.String(), DiffID: l.diffID.String(), Size: l.size, MediaType: l.mediaType})
	if err != nil {
		return err
	}
	if err := writeFileAtomically(filepath.Join(c.Dir, key+".blob"), true, func(w io.Writer) error {
		_, err := io.Copy(w, io.NewSectionReader(l.f, 0, l.size))
		return err
	}); err != nil {
		return err
	}
	return writeData(filepath.Join(c.Dir, key+".json"), desc)
}

// writeData replaces file with data (writeFileAtomically).
func writeData(file string, data []byte) error {
	return writeFileAtomically(file, true, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// pushedFile is where the cache records the repositories a layer (by digest) was pushed to.
func (c *LayerCache) pushedFile(d v1.Hash) string {
	return filepath.Join(c.Dir, "pushed", d.Algorithm+"-"+d.Hex)
}

// mountable is img with each layer that the cache saw pushed to another repository of repo's registry
// offered for a cross-repository mount from there (go-containerregistry asks the registry to mount a
// *remote.MountableLayer, and sends the blob when it will not).
func (c *LayerCache) mountable(img v1.Image, repo name.Repository) v1.Image {
	return mountImage{Image: img, c: c, repo: repo}
}

type mountImage struct {
	v1.Image
	c    *LayerCache
	repo name.Repository
}

func (mi mountImage) Layers() ([]v1.Layer, error) {
	ls, err := mi.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := slices.Clone(ls)
	for i, l := range ls {
		if _, ok := l.(*remote.MountableLayer); ok {
			continue
		}
		d, err := l.Digest()
		if err != nil {
			continue
		}
		data, err := os.ReadFile(mi.c.pushedFile(d))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			from, err := name.NewRepository(line, name.WeakValidation)
			if err != nil || from.RegistryStr() != mi.repo.RegistryStr() || from.RepositoryStr() == mi.repo.RepositoryStr() {
				continue
			}
			out[i] = &remote.MountableLayer{Layer: l, Reference: from.Digest(d.String())}
			break
		}
	}
	return out, nil
}

// recordPushed notes that img's layers are in repo (best effort: a record that cannot be written only
// costs a later mount).
func (c *LayerCache) recordPushed(img v1.Image, repo name.Repository) {
	ls, err := img.Layers()
	if err != nil {
		return
	}
	line := repo.RegistryStr() + "/" + repo.RepositoryStr()
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			continue
		}
		f := c.pushedFile(d)
		old, _ := os.ReadFile(f)
		if slices.Contains(strings.Split(string(old), "\n"), line) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return
		}
		writeData(f, append(old, line+"\n"...))
	}
}
