package collector

import (
	"errors"
	"io/fs"

	"github.com/scratchpack/scratchpack/collector/dpkg"
	"github.com/scratchpack/scratchpack/collector/rootfs"
	"github.com/scratchpack/scratchpack/elfdeps"
)

// fakeView is a View over a few files, for rules' parsing in fuzz tests: it reads, and adds nothing.
type fakeView struct{ files map[string][]byte }

var errFake = errors.New("not in the fake view")

func (v *fakeView) Root() rootfs.FS                          { return nil }
func (v *fakeView) Lookup(string) (elfdeps.Lookup, error)    { return elfdeps.Lookup{}, errFake }
func (v *fakeView) Entry(string) (Entry, bool)               { return Entry{}, false }
func (v *fakeView) Libraries() []string                      { return nil }
func (v *fakeView) Importers(...string) ([]string, []string) { return nil, nil }
func (v *fakeView) AddRootPath(string, Origin) error         { return errFake }
func (v *fakeView) AddData(string, []byte, uint32, Origin) (bool, error) {
	return false, errFake
}
func (v *fakeView) AddSymlink(string, string, Origin) (bool, error) { return false, errFake }
func (v *fakeView) AddDir(string, uint32, int, int, Origin) error   { return errFake }
func (v *fakeView) Dlopen(string, Origin) ([]string, error)         { return nil, errFake }

func (v *fakeView) LoaderNeeds() []LoaderNeed { return nil }
func (v *fakeView) LoaderDirs(string) ([]string, []string, error) {
	return nil, nil, errFake
}
func (v *fakeView) TreeFS() fs.FS                      { return nil }
func (v *fakeView) Packages() (*dpkg.DB, error)        { return nil, dpkg.ErrNoDatabase }
func (v *fakeView) Objects() (programs, libs []string) { return nil, nil }
func (v *fakeView) Scripts() []Script                  { return nil }
func (v *fakeView) Entries() []Entry                   { return nil }

func (v *fakeView) ReadEntry(p string) ([]byte, error) {
	if d, ok := v.files[p]; ok {
		return d, nil
	}
	return nil, errFake
}

func (v *fakeView) ReadRootFile(p string) ([]byte, error) { return v.ReadEntry(p) }
