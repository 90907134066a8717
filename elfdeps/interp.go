package elfdeps

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"strings"
)

// interpInfo is what a glibc ld.so has built in: its system search directories (SYSTEM_DIRS, each with a
// trailing '/') and the value of $LIB.
type interpInfo struct {
	dirs []searchDir
	lib  string
}

// isSystem reports whether a cached path lies in a system directory (glibc rejects those for DF_1_NODEFLIB
// loaders by prefix, trailing '/' included).
func (i *interpInfo) isSystem(p string) bool {
	for _, d := range i.dirs {
		if strings.HasPrefix(p, d.dir) {
			return true
		}
	}
	return false
}

// searches reports whether the loader's built-in search reaches directory dir: a system directory or one
// of its glibc-hwcaps subdirectories.
func (i *interpInfo) searches(dir string) bool {
	for _, d := range i.dirs {
		sys := strings.TrimSuffix(d.dir, "/")
		if dir == sys {
			return true
		}
		if sub, ok := strings.CutPrefix(dir, sys+"/glibc-hwcaps/"); ok && sub != "" && !strings.Contains(sub, "/") {
			return true
		}
	}
	return false
}

func newInterpInfo(dirs []string) *interpInfo {
	info := &interpInfo{}
	for _, d := range dirs {
		info.dirs = append(info.dirs, searchDir{dir: d, how: HowDefault})
	}
	if len(dirs) > 0 {
		// $LIB is glibc's slibdir without its leading '/', which is also its first system directory
		// ("lib/x86_64-linux-gnu" on Debian, "lib64" on Fedora).
		info.lib = strings.Trim(dirs[0], "/")
	}
	return info
}

// interpInfo reads the system directories out of a glibc ld.so file: SYSTEM_DIRS is stored as consecutive
// NUL-terminated absolute directory names each ending in '/' ("/lib/x86_64-linux-gnu/\0/usr/lib/...\0/lib/\0
// /usr/lib/\0"). Reading them from the interpreter, rather than from a table, is what makes a Fedora or
// Alpine-glibc sysroot come out right.
func (r *Resolver) interpInfo(real string, f *File) *interpInfo {
	r.c.mu.Lock()
	info, ok := r.c.interps[real]
	r.c.mu.Unlock()
	if ok {
		return info
	}
	var dirs []string
	if fh, size, ra, err := r.root.open(real); err == nil {
		if size <= maxSegment {
			data := make([]byte, size)
			if _, err := ra.ReadAt(data, 0); err == nil || err == io.EOF {
				dirs = systemDirsIn(data)
			}
		}
		fh.Close()
	}
	if len(dirs) == 0 {
		info = fallbackInterpInfo(r, f.Machine, f.Class)
	} else {
		info = newInterpInfo(dirs)
	}
	r.c.mu.Lock()
	r.c.interps[real] = info
	r.c.mu.Unlock()
	return info
}

// systemDirsIn finds the first run of at least two NUL-terminated strings that are absolute directory names
// ending in '/' and naming a lib directory, the last of which is "/usr/lib.../".
func systemDirsIn(data []byte) []string {
	isDir := func(b []byte) bool {
		if len(b) < 3 || b[0] != '/' || b[len(b)-1] != '/' || !bytes.Contains(b, []byte("lib")) {
			return false
		}
		for _, c := range b {
			if c <= ' ' || c >= 0x7f || c == '%' || c == '$' {
				return false
			}
		}
		return true
	}
	// The list starts with a "/" that no string character precedes: a NUL on most machines, but on 32-bit
	// ARM the strings follow code (a literal pool ending in 0xff bytes) without one.
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '/')
		if j < 0 {
			return nil
		}
		start := i + j
		i = start + 1
		if start > 0 && data[start-1] > ' ' && data[start-1] < 0x7f {
			continue
		}
		var run []string
		pos := start
		for pos < len(data) {
			end := bytes.IndexByte(data[pos:], 0)
			if end < 0 || !isDir(data[pos:pos+end]) {
				break
			}
			run = append(run, string(data[pos:pos+end]))
			pos += end + 1
		}
		if len(run) >= 2 && strings.HasPrefix(run[len(run)-1], "/usr/lib") {
			return run
		}
	}
}

// multiarchTriplet is Debian's multiarch directory name for a machine.
func multiarchTriplet(m elf.Machine, c elf.Class) string {
	switch m {
	case elf.EM_X86_64:
		if c == elf.ELFCLASS32 {
			return "x86_64-linux-gnux32"
		}
		return "x86_64-linux-gnu"
	case elf.EM_386:
		return "i386-linux-gnu"
	case elf.EM_AARCH64:
		return "aarch64-linux-gnu"
	case elf.EM_ARM:
		return "arm-linux-gnueabihf"
	case elf.EM_PPC64:
		return "powerpc64le-linux-gnu"
	case elf.EM_S390:
		return "s390x-linux-gnu"
	case elf.EM_RISCV:
		return "riscv64-linux-gnu"
	}
	return ""
}

// fallbackInterpInfo guesses the system directories when there is no interpreter to read them from: Debian's
// multiarch layout when the root has it, else lib64 or lib by class.
func fallbackInterpInfo(r *Resolver, m elf.Machine, c elf.Class) *interpInfo {
	if t := multiarchTriplet(m, c); t != "" {
		if rp, err := r.root.resolve("/usr/lib/" + t); err == nil && rp.mode.IsDir() {
			return newInterpInfo([]string{"/lib/" + t + "/", "/usr/lib/" + t + "/", "/lib/", "/usr/lib/"})
		}
	}
	if c == elf.ELFCLASS64 {
		return newInterpInfo([]string{"/lib64/", "/usr/lib64/"})
	}
	return newInterpInfo([]string{"/lib/", "/usr/lib/"})
}

// maxLDCache bounds what is read of an ld.so.cache: Debian's is a few dozen KiB; a sysroot's 8 GB sparse file
// must not be read into memory.
const maxLDCache = 64 << 20

// ErrTooLarge is returned (wrapped) for a file larger than scratchpack reads of its kind.
var ErrTooLarge = errors.New("too large")

// ldCache returns the root's parsed /etc/ld.so.cache, or nil when it is absent or unreadable (ld.so then
// goes on without it, and so do we).
func (r *Resolver) ldCache() *LDCache {
	r.c.cacheOnce.Do(func() {
		rp, err := r.root.resolve("/etc/ld.so.cache")
		if err != nil || !rp.mode.IsRegular() {
			return
		}
		fh, size, ra, err := r.root.open(rp.real)
		if err != nil {
			return
		}
		defer fh.Close()
		if size > maxLDCache {
			r.c.cacheErr = fmt.Errorf("/etc/ld.so.cache: %w: %d bytes, more than %d MiB", ErrTooLarge, size, maxLDCache>>20)
			return
		}
		data := make([]byte, size)
		if _, err := ra.ReadAt(data, 0); err != nil && err != io.EOF {
			r.c.cacheErr = err
			return
		}
		r.c.cache, r.c.cacheErr = ParseLDCache(data)
		if r.c.cacheErr != nil {
			r.opts.log.Warn("ignoring ld.so.cache", "err", r.c.cacheErr)
			r.c.cache = nil
		}
	})
	return r.c.cache
}
