package collector

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// Kind is what an entry of the image's file tree is.
type Kind uint8

const (
	KindDir Kind = iota + 1
	KindFile
	KindSymlink
)

func (k Kind) String() string {
	switch k {
	case KindDir:
		return "dir"
	case KindFile:
		return "file"
	case KindSymlink:
		return "symlink"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Entry is one path of the image. Owners are always root (0:0); times come from the writer.
type Entry struct {
	Path   string      // absolute and clean, inside the image
	Kind   Kind        //
	Mode   fs.FileMode // permission bits, with setuid/setgid/sticky where they apply; no type bits
	Source string      // KindFile: the host file to copy (a regular file); "" when Data holds the content
	Data   []byte      // KindFile: the content, when Source is ""
	Size   int64       // KindFile: the size in bytes
	Target string      // KindSymlink: the link's target, verbatim
	// Why lists every reason the path is in the image, in the order they were found.
	Why []string
	// Via lists the image paths of the objects that brought this one in (the loader of a library, the
	// script of an interpreter), for explaining the chain.
	Via []string
}

// Open returns the content of a file entry.
func (e *Entry) Open() (io.ReadCloser, error) {
	if e.Kind != KindFile {
		return nil, fmt.Errorf("%s: not a file", e.Path)
	}
	if e.Source == "" {
		return io.NopCloser(bytes.NewReader(e.Data)), nil
	}
	f, err := os.Open(e.Source)
	if err != nil {
		return nil, fmt.Errorf("reading %s for %s: %w", e.Source, e.Path, err)
	}
	return f, nil
}

// Tree is the file tree of an image: every path once, parents implied. It is built up, then written by a
// writer (WriteDir, WriteTar, WriteCPIO, an image layer). Entries come out sorted, so every output is
// reproducible.
type Tree struct {
	entries map[string]*Entry
}

// NewTree returns a tree holding only the root directory.
func NewTree() *Tree {
	t := &Tree{entries: map[string]*Entry{}}
	t.entries["/"] = &Entry{Path: "/", Kind: KindDir, Mode: 0o755}
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
	if e.Kind == KindFile && e.Source == "" {
		e.Size = int64(len(e.Data))
	}
	if old, ok := t.entries[p]; ok {
		if !sameEntry(old, &e) {
			return fmt.Errorf("%s: added as %s and as %s", p, describe(old), describe(&e))
		}
		for _, w := range e.Why {
			if !slices.Contains(old.Why, w) {
				old.Why = append(old.Why, w)
			}
		}
		for _, v := range e.Via {
			if !slices.Contains(old.Via, v) {
				old.Via = append(old.Via, v)
			}
		}
		if e.Kind == KindDir && e.Mode != old.Mode && old.Mode == 0o755 {
			old.Mode = e.Mode // an explicit mode (e.g. /tmp's 1777) wins over an implied parent's
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
		t.entries[dir] = &Entry{Path: dir, Kind: KindDir, Mode: 0o755}
	}
	ne := e
	ne.Why, ne.Via = slices.Clone(e.Why), slices.Clone(e.Via)
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
		if a.Source != "" || b.Source != "" {
			return a.Source == b.Source && a.Mode == b.Mode
		}
		return bytes.Equal(a.Data, b.Data) && a.Mode == b.Mode
	}
	return true
}

func describe(e *Entry) string {
	switch e.Kind {
	case KindSymlink:
		return "a symlink to " + e.Target
	case KindFile:
		if e.Source != "" {
			return "a copy of " + e.Source
		}
		return fmt.Sprintf("generated content (%d bytes)", len(e.Data))
	}
	return "a directory"
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
	ac, bc := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(ac) && i < len(bc); i++ {
		if c := strings.Compare(ac[i], bc[i]); c != 0 {
			return c
		}
	}
	return len(ac) - len(bc)
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
