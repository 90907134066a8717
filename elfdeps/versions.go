package elfdeps

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"
)

// VersionNeed is one DT_VERNEED entry: the versions an object requires of the object named File.
type VersionNeed struct {
	File     string
	Versions []VersionReq
}

// VersionReq is one required version (a Vernaux entry).
type VersionReq struct {
	Name string
	Hash uint32
	Weak bool // VER_FLG_WEAK: a missing version is only a warning
}

// VersionDef is one version an object defines (a Verdef entry, named by its first Verdaux).
type VersionDef struct {
	Name string
	Hash uint32
	Base bool // VER_FLG_BASE: the object's own name, not a version to match
}

const (
	verFlgBase = 0x1
	verFlgWeak = 0x2
	// maxVersionEntries bounds what a hostile chain of entries can make us read.
	maxVersionEntries = 1 << 14
)

// readVersions reads DT_VERNEED and DT_VERDEF (virtual addresses, with their entry counts) through the
// PT_LOAD segments, as the loader does; names come from the dynamic string table through str.
func (f *File) readVersions(r io.ReaderAt, size int64, bo binary.ByteOrder, verneed, verneedNum, verdef, verdefNum, strOff, strLen uint64, sw *window) error {
	// The entries lie together, and so do their names: a window of the file for each (sw, the string
	// table's, is parseELF's) serves them with a read or two instead of one per entry and per name.
	w := &window{r: r, size: size}
	defer w.release()
	read := func(vaddr uint64, n int, what string) ([]byte, error) {
		off, ok := vaddrToOffset(f.loads, vaddr)
		if !ok || off > uint64(size) || uint64(n) > uint64(size)-off {
			return nil, fmt.Errorf("%w: %s outside the file", ErrBadELF, what)
		}
		b, err := w.at(int64(off), n)
		if err != nil {
			return nil, fmt.Errorf("%w: reading %s: %v", ErrBadELF, what, err)
		}
		return b, nil
	}
	str := func(v uint64) (string, error) {
		if v >= strLen {
			return "", fmt.Errorf("%w: version name offset %d outside the string table", ErrBadELF, v)
		}
		for n := 64; ; n *= 4 {
			n = int(min(uint64(n), strLen-v))
			b, err := sw.at(int64(strOff+v), n)
			if err != nil {
				return "", fmt.Errorf("%w: reading a version name: %v", ErrBadELF, err)
			}
			if i := bytes.IndexByte(b, 0); i >= 0 {
				return string(b[:i]), nil
			}
			if uint64(n) >= strLen-v || n >= 1<<16 {
				return string(b), nil
			}
		}
	}
	if verneed != 0 {
		at := verneed
		for i := uint64(0); i < min(verneedNum, maxVersionEntries); i++ {
			b, err := read(at, 16, "DT_VERNEED")
			if err != nil {
				return err
			}
			cnt, file, aux, next := bo.Uint16(b[2:]), bo.Uint32(b[4:]), bo.Uint32(b[8:]), bo.Uint32(b[12:])
			name, err := str(uint64(file))
			if err != nil {
				return err
			}
			need := VersionNeed{File: name}
			a := at + uint64(aux)
			for j := 0; j < int(cnt) && j < maxVersionEntries; j++ {
				ab, err := read(a, 16, "a Vernaux entry")
				if err != nil {
					return err
				}
				vname, err := str(uint64(bo.Uint32(ab[8:])))
				if err != nil {
					return err
				}
				need.Versions = append(need.Versions, VersionReq{Name: vname, Hash: bo.Uint32(ab[0:]), Weak: bo.Uint16(ab[4:])&verFlgWeak != 0})
				anext := bo.Uint32(ab[12:])
				if anext == 0 {
					break
				}
				a += uint64(anext)
			}
			f.VersionNeeds = append(f.VersionNeeds, need)
			if next == 0 {
				break
			}
			at += uint64(next)
		}
	}
	if verdef != 0 {
		at := verdef
		for i := uint64(0); i < min(verdefNum, maxVersionEntries); i++ {
			b, err := read(at, 20, "DT_VERDEF")
			if err != nil {
				return err
			}
			flags, cnt, hash, aux, next := bo.Uint16(b[2:]), bo.Uint16(b[6:]), bo.Uint32(b[8:]), bo.Uint32(b[12:]), bo.Uint32(b[16:])
			def := VersionDef{Hash: hash, Base: flags&verFlgBase != 0}
			if cnt > 0 {
				ab, err := read(at+uint64(aux), 8, "a Verdaux entry")
				if err != nil {
					return err
				}
				if def.Name, err = str(uint64(bo.Uint32(ab[0:]))); err != nil {
					return err
				}
			}
			f.VersionDefs = append(f.VersionDefs, def)
			if next == 0 {
				break
			}
			at += uint64(next)
		}
		if f.VersionDefs == nil {
			f.VersionDefs = []VersionDef{} // has DT_VERDEF, defines nothing
		}
	}
	return nil
}

// VersionError reports a symbol version an object requires and the object it resolved to does not define:
// glibc refuses to start the program ("version `VER_2' not found").
type VersionError struct {
	Version  string // the version required
	Library  string // the needed name (vn_file)
	Path     string // the object it resolved to
	NeededBy string // the object that requires it
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("version `%s' not found in %s (%s), required by %s: an older copy of the library comes first", e.Version, e.Library, e.Path, e.NeededBy)
}

// checkVersions checks, as glibc's _dl_check_map_versions does at start-up, every object's requirements
// against the definitions of the object each needed name resolved to: a non-weak version the other does not
// define is fatal; an object without DT_VERDEF satisfies nothing but is only warned about (not an error).
func checkVersions(objs []*Object, memo *sync.Map) []error { return checkVersionsOf(objs, objs, memo) }

// checkVersionsOf checks the objects of, among all those mapped (a dlopen checks what it maps). memo, if
// not nil, keeps the needs found satisfied (a Resolver's: the same pairs meet in every program).
func checkVersionsOf(of, objs []*Object, memo *sync.Map) []error {
	var problems []error
	var byName map[string]*Object // for many objects, built on the first need: findByName's answers in one pass
	for _, o := range of {
		if o == nil || o.File == nil {
			continue
		}
		for i := range o.File.VersionNeeds {
			need := o.File.VersionNeeds[i]
			var dep *Object
			if len(objs) <= 32 {
				dep = findByName(objs, need.File)
			} else {
				if byName == nil {
					byName = nameIndex(objs)
				}
				dep = byName[need.File]
			}
			if dep == nil || dep.File == nil || dep.File.VersionDefs == nil {
				continue // not loaded (reported already), or no version information: glibc only warns
			}
			if needSatisfied(memo, o.File, i, dep.File) {
				continue
			}
			for _, v := range need.Versions {
				if v.Weak || defines(dep.File.VersionDefs, v) {
					continue
				}
				problems = append(problems, &VersionError{Version: v.Name, Library: need.File, Path: dep.Path, NeededBy: o.Path})
			}
		}
	}
	return problems
}

// needSatisfied reports whether def defines every non-weak version of f's need i, keeping a yes in memo
// (by f: the definer found for each of its needs).
func needSatisfied(memo *sync.Map, f *File, i int, def *File) bool {
	var m *verMemo
	if memo != nil {
		v, ok := memo.Load(f)
		if !ok {
			v, _ = memo.LoadOrStore(f, &verMemo{ok: make([]*File, len(f.VersionNeeds))})
		}
		m = v.(*verMemo)
		m.mu.Lock()
		hit := m.ok[i] == def
		m.mu.Unlock()
		if hit {
			return true
		}
	}
	for _, v := range f.VersionNeeds[i].Versions {
		if !v.Weak && !defines(def.VersionDefs, v) {
			return false
		}
	}
	if m != nil {
		m.mu.Lock()
		m.ok[i] = def
		m.mu.Unlock()
	}
	return true
}

// verMemo is, for one file, the definer last found to satisfy each of its version needs.
type verMemo struct {
	mu sync.Mutex
	ok []*File
}

// nameIndex maps every name findByName matches to the object it would return: the first of objs that
// was loaded by that name, has it as its SONAME, or was loaded by a path ending in "/" and that name.
func nameIndex(objs []*Object) map[string]*Object {
	m := make(map[string]*Object, 4*len(objs))
	add := func(name string, o *Object) {
		if _, ok := m[name]; !ok {
			m[name] = o
		}
	}
	for _, o := range objs {
		if o == nil {
			continue
		}
		if o.Soname != "" {
			add(o.Soname, o)
		}
		add(o.Name, o)
		if o.How == HowPath {
			for i := 0; i < len(o.Path); i++ {
				if o.Path[i] == '/' && i+1 < len(o.Path) {
					add(o.Path[i+1:], o)
				}
			}
		}
		for _, n := range o.names {
			add(n, o)
		}
	}
	return m
}

// defines reports whether defs has the version v (glibc compares the hash, then the name).
func defines(defs []VersionDef, v VersionReq) bool {
	for _, d := range defs {
		if d.Hash == v.Hash && d.Name == v.Name {
			return true
		}
	}
	return false
}

// findByName finds the loaded object a vn_file names, as _dl_name_match_p does: by any name it was loaded
// as, or by its SONAME.
func findByName(objs []*Object, name string) *Object {
	for _, o := range objs {
		if o == nil {
			continue
		}
		if o.Soname == name || o.Name == name || strings.HasSuffix(o.Path, "/"+name) && o.How == HowPath {
			return o
		}
		for _, n := range o.names {
			if n == name {
				return o
			}
		}
	}
	return nil
}

// window serves small reads of a file from one cached, page-aligned block.
type window struct {
	r    io.ReaderAt
	size int64
	off  int64
	buf  []byte
}

const windowSize = 4096

// release gives the window's buffer back (the views it gave out must be dead).
func (w *window) release() {
	if w.buf != nil {
		putBuf(w.buf)
		w.buf = nil
	}
}

// bufs are read buffers of windowSize (larger ones are not kept): a resolution reads thousands of files
// a few pages each, and reusing the buffers spares the garbage collector most of the bytes it would scan.
var bufs = sync.Pool{New: func() any { b := make([]byte, windowSize); return &b }}

func getBuf(n int) []byte {
	if n <= windowSize {
		return (*bufs.Get().(*[]byte))[:n]
	}
	return make([]byte, n)
}

func putBuf(b []byte) {
	if cap(b) == windowSize {
		b = b[:windowSize]
		bufs.Put(&b)
	}
}

// at returns n bytes at off (a view of the window: not to be kept).
func (w *window) at(off int64, n int) ([]byte, error) {
	if off >= w.off && off+int64(n) <= w.off+int64(len(w.buf)) && w.buf != nil {
		return w.buf[off-w.off : off-w.off+int64(n)], nil
	}
	if h, ok := w.r.(*headReader); ok && off >= 0 && off+int64(n) <= int64(len(h.head)) {
		return h.head[off : off+int64(n)], nil // the first page, read already
	}
	start := off &^ (4096 - 1)
	length := max(int64(windowSize), off-start+int64(n))
	length = min(length, w.size-start)
	if length < off-start+int64(n) {
		return nil, io.ErrUnexpectedEOF
	}
	buf := w.buf[:0]
	if int64(cap(buf)) < length {
		w.release()
		buf = getBuf(int(length))
	}
	buf = buf[:length]
	m, err := w.r.ReadAt(buf, start)
	if int64(m) < off-start+int64(n) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	w.off, w.buf = start, buf[:m]
	return w.buf[off-w.off : off-w.off+int64(n)], nil
}
