package elfdeps

import (
	"debug/elf"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strings"
)

// Option configures a Resolver.
type Option func(*options) error

type options struct {
	libraryPath    string
	hasLibraryPath bool
	workDir        string
	cpu            func(elf.Machine, elf.Class) CPU
	log            *slog.Logger
}

// WithLibraryPath resolves as if LD_LIBRARY_PATH were set to value (glibc splits it at ':' and ';', musl at
// ':' and newlines). The caller's own environment is never read.
func WithLibraryPath(value string) Option {
	return func(o *options) error {
		o.libraryPath, o.hasLibraryPath = value, true
		return nil
	}
}

// WithWorkDir sets the working directory (absolute, inside the root) against which relative names resolve:
// DT_NEEDED names holding a '/', relative and empty RPATH/RUNPATH/LD_LIBRARY_PATH elements, relative inputs.
// The default is "/".
func WithWorkDir(dir string) Option {
	return func(o *options) error {
		if !strings.HasPrefix(dir, "/") {
			return fmt.Errorf("working directory %q is not absolute", dir)
		}
		o.workDir = path.Clean(dir)
		return nil
	}
}

// WithCPU chooses the processor-dependent behaviour ($PLATFORM, glibc-hwcaps and legacy hwcap subdirectories)
// for objects of a given machine: HostCPU (the default), BaselineCPU, AllVariantsCPU, or any function.
func WithCPU(choose func(elf.Machine, elf.Class) CPU) Option {
	return func(o *options) error {
		if choose == nil {
			return fmt.Errorf("nil CPU chooser")
		}
		o.cpu = choose
		return nil
	}
}

// WithLogger makes the resolver log every candidate it tries at debug level (like LD_DEBUG=libs).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		o.log = l
		return nil
	}
}

func defaultOptions() options {
	return options{
		workDir: "/",
		cpu:     HostCPU,
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}
