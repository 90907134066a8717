// Command elfcorpus prints the benchmark corpus of bench/deps.sh: every regular file (symbolic links are
// skipped) under the given directories that is an ELF object with a PT_INTERP of the x86-64 glibc loader or
// with at least one DT_NEEDED entry, one path a line, sorted. Unreadable or malformed files are skipped.
//
//	go run ./bench/elfcorpus [-interp PATH] DIR...
package main

import (
	"bytes"
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
)

func main() {
	interp := flag.String("interp", "/lib64/ld-linux-x86-64.so.2", "the PT_INTERP that qualifies a file")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: elfcorpus [-interp PATH] DIR...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}

	var candidates []string
	for _, dir := range flag.Args() {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // unreadable directory: skip it
			}
			if d.Type().IsRegular() {
				candidates = append(candidates, p)
			}
			return nil
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "elfcorpus: %v\n", err)
		}
	}

	keep := make([]bool, len(candidates))
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				keep[i] = qualifies(candidates[i], *interp)
			}
		}()
	}
	for i := range candidates {
		next <- i
	}
	close(next)
	wg.Wait()

	var out []string
	for i, p := range candidates {
		if keep[i] {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	w := os.Stdout
	for _, p := range out {
		fmt.Fprintln(w, p)
	}
}

// qualifies reports whether the file at p is an ELF object with PT_INTERP == interp or with a DT_NEEDED.
func qualifies(p, interp string) bool {
	fh, err := os.Open(p)
	if err != nil {
		return false
	}
	defer fh.Close()
	var magic [4]byte
	if _, err := io.ReadFull(fh, magic[:]); err != nil || string(magic[:]) != elf.ELFMAG {
		return false
	}
	f, err := elf.NewFile(fh)
	if err != nil {
		return false
	}
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(prog.Open())
		if err != nil {
			continue
		}
		if string(bytes.TrimRight(b, "\x00")) == interp {
			return true
		}
	}
	needed, err := f.DynString(elf.DT_NEEDED)
	return err == nil && slices.ContainsFunc(needed, func(s string) bool { return s != "" })
}
