package elfdeps

import (
	"fmt"
	"strings"
)

// NotFoundError reports a DT_NEEDED (or PT_INTERP) name the loader would not find.
type NotFoundError struct {
	Name     string   // the name as needed
	NeededBy string   // path of the object that needs it
	Searched []string // every directory tried, in order, each with where it came from
	// WrongClass lists files found under the name that the loader skipped (other ELF class or machine).
	WrongClass []string
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s not found (needed by %s)", e.Name, e.NeededBy)
	if len(e.WrongClass) > 0 {
		fmt.Fprintf(&b, "; skipped for wrong ELF class or machine: %s", strings.Join(e.WrongClass, ", "))
	}
	if len(e.Searched) > 0 {
		fmt.Fprintf(&b, "; searched: %s", strings.Join(e.Searched, ", "))
	}
	return b.String()
}

// LoadError reports a file the loader would find but refuse fatally (glibc stops the whole load on an invalid
// ELF header, a truncated file, a wrong byte order...).
type LoadError struct {
	Name     string // the name as needed
	NeededBy string
	Path     string // the file that was rejected
	Err      error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("loading %s (needed by %s) from %s: %v", e.Name, e.NeededBy, e.Path, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }
