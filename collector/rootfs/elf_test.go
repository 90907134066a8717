package rootfs

import "github.com/scratchpack/scratchpack/internal/elftest"

// synthELF writes a minimal x86-64 ELF object (see internal/elftest): PT_INTERP when interp is not "",
// DT_NEEDED and DT_SONAME entries, and extra appended (a fake ld.so carries its system directories there).
func synthELF(interp string, needed []string, soname string, extra string) []byte {
	return elftest.ELF(elftest.Opts{Interp: interp, Needed: needed, Soname: soname, Extra: []byte(extra)})
}
