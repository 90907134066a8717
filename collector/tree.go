package collector

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Tree is the file tree of an image: every path once, parents implied. It is built up, then written by a
// writer (WriteDir, WriteTar, WriteCPIO, an image layer). Entries come out sorted, so every output is
// reproducible.
type Tree struct {
	entries map[string]*Entry
}

// NewTree returns a tree holding only the root directory.
func NewTree() *Tree {
	t := &Tree{entries: map[string]*Entry{}}
	t.entries["/"] = &Entry{Path: "/", Kind: KindDir, Mode: 0o755, implied: true}
	return t
}

// cleanPath validates an image path: absolute, and naming nothing outside the root once cleaned.
func cleanPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("image path %q is not absolute", p)
	}
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("image path %q holds a NUL byte", p)
	}
	return path.Clean(p), nil
}

// Add puts e into the tree, creating missing parent directories (mode 0755). Adding a path again with the
// same content only adds its reasons; adding it with different content is an error naming both.
func (t *Tree) Add(e Entry) error {
	p, err := cleanPath(e.Path)
	if err != nil {
		return err
	}
	e.Path = p
	if e.Kind == KindFile {
		switch {
		case e.Source == nil:
			e.Size = int64(len(e.Data))
		case e.Size == 0:
			e.Size = e.Source.Size()
		}
	}
	if old, ok := t.entries[p]; ok {
		if !sameEntry(old, &e) {
			return fmt.Errorf("%s: added as %s and as %s", p, describe(old), describe(&e))
		}
		if e.Kind == KindDir && (old.implied || e.Mode != old.Mode && old.Mode == 0o755) {
			// An explicit directory (e.g. /tmp's 1777, an image's owners) wins over an implied parent.
			old.Mode, old.UID, old.GID, old.implied = e.Mode, e.UID, e.GID, false
		}
		for _, o := range e.Origins {
			if !slices.Contains(old.Origins, o) {
				old.Origins = append(old.Origins, o)
			}
		}
		return nil
	}
	for dir := path.Dir(p); ; dir = path.Dir(dir) {
		if d, ok := t.entries[dir]; ok {
			if d.Kind != KindDir {
				return fmt.Errorf("%s: its parent %s is a %s in the image", p, dir, d.Kind)
			}
			break
		}
		t.entries[dir] = &Entry{Path: dir, Kind: KindDir, Mode: 0o755, implied: true}
	}
	ne := e
	ne.Origins = slices.Clone(e.Origins)
	t.entries[p] = &ne
	return nil
}

func sameEntry(a, b *Entry) bool {
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case KindSymlink:
		return a.Target == b.Target
	case KindFile:
		if a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID {
			return false
		}
		if a.Source != nil || b.Source != nil {
			return a.Source != nil && b.Source != nil && sameSource(a.Source, b.Source)
		}
		return bytes.Equal(a.Data, b.Data)
	}
	return true
}

func describe(e *Entry) string {
	switch e.Kind {
	case KindSymlink:
		return "a symlink to " + e.Target
	case KindFile:
		if e.Source != nil {
			return "a copy of " + e.Source.String()
		}
		return fmt.Sprintf("generated content (%d bytes)", len(e.Data))
	}
	return "a directory"
}

// Remove takes the entry at p (not a directory) out of the tree.
func (t *Tree) Remove(p string) {
	if e := t.entries[path.Clean(p)]; e != nil && e.Kind != KindDir {
		delete(t.entries, e.Path)
	}
}

// Get returns the entry at p, or nil.
func (t *Tree) Get(p string) *Entry {
	return t.entries[path.Clean(p)]
}

// Entries returns every entry sorted by path, so that a directory always precedes what it holds.
func (t *Tree) Entries() []*Entry {
	out := make([]*Entry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *Entry) int { return comparePaths(a.Path, b.Path) })
	return out
}

// comparePaths orders paths component by component ("/a/b" before "/a-b"), so parents come first.
func comparePaths(a, b string) int {
	for {
		ac, arest, amore := strings.Cut(a, "/")
		bc, brest, bmore := strings.Cut(b, "/")
		if c := strings.Compare(ac, bc); c != 0 {
			return c
		}
		switch {
		case !amore && !bmore:
			return 0
		case !amore:
			return -1
		case !bmore:
			return 1
		}
		a, b = arest, brest
	}
}

// Size returns the number of entries and the total bytes of the files.
func (t *Tree) Size() (n int, bytes int64) {
	for _, e := range t.entries {
		n++
		if e.Kind == KindFile {
			bytes += e.Size
		}
	}
	return n, bytes
}

// Resolve follows the tree's symbolic links the way the kernel would inside the built root and returns the
// entry p leads to, or nil if it leads nowhere in the tree.
func (t *Tree) Resolve(p string) *Entry {
	p = path.Clean("/" + p)
	for range 40 {
		cur := "/"
		rest := strings.Split(strings.TrimPrefix(p, "/"), "/")
		restarted := false
		for i, c := range rest {
			if c == "" {
				continue
			}
			next := path.Join(cur, c)
			e := t.entries[next]
			if e == nil {
				return nil
			}
			if e.Kind == KindSymlink {
				target := e.Target
				if !strings.HasPrefix(target, "/") {
					target = path.Join(cur, target)
				}
				p = path.Join(append([]string{"/", target}, rest[i+1:]...)...)
				restarted = true
				break
			}
			cur = next
		}
		if !restarted {
			return t.entries[cur]
		}
	}
	return nil
}
