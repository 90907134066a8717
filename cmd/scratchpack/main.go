// Command scratchpack turns dynamically-linked programs into minimal FROM-scratch root filesystems and
// images, without running them.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"github.com/spf13/pflag"
)

// exitError carries an exit status through to main; its message, if any, has been printed already or is
// printed by main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

type command struct {
	name    string
	summary string
	args    string                // what follows the flags in the usage line
	about   func() string         // the help text above the flags
	flags   func() *pflag.FlagSet // the command's flags, for help and completion (nil: none)
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"deps", "list the files the dynamic loader maps for ELF programs", "FILE...",
			func() string { return depsAbout }, func() *pflag.FlagSet { fl, _ := depsFlagSet(); return fl }, runDeps},
		{"build", "build a minimal root filesystem or FROM-scratch image for programs", "FILE[:DEST]... -o DEST",
			buildAbout, func() *pflag.FlagSet { fl, _ := buildFlagSet(); return fl }, runBuild},
		{"slim", "slim an existing image to what its entrypoint, command and rules need, without running it", "SRC -o DEST",
			func() string { return slimAbout }, func() *pflag.FlagSet { fl, _ := slimFlagSet(); return fl }, runSlim},
		{"rules", "list the run-time rules build applies (and --no-rule NAME switches off)", "",
			func() string { return "Lists the run-time rules 'scratchpack build' applies, in order." }, nil, runRules},
		{"version", "print the version and VCS revision scratchpack was built from", "",
			func() string { return "Prints scratchpack's module version, VCS revision and Go version." }, nil, runVersion},
		{"completion", "print a shell completion script: bash, zsh or fish", "bash|zsh|fish",
			func() string { return completionAbout }, nil, runCompletion},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "scratchpack: minimal FROM-scratch images for dynamically-linked programs, without running them.\n\n")
	fmt.Fprintf(w, "Usage:\n  scratchpack COMMAND [flags] [args]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'scratchpack COMMAND --help' for a command's flags; 'scratchpack --version' for the version.\n")
}

// commandUsage writes a command's help: its usage line, what it does, and its flags.
func commandUsage(w io.Writer, c command) {
	line := "scratchpack " + c.name
	if c.flags != nil {
		line += " [flags]"
	}
	if c.args != "" {
		line += " " + c.args
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", line, c.about())
	if c.flags != nil {
		fmt.Fprintf(w, "\nFlags:\n%s", c.flags().FlagUsages())
	}
}

// parseFlags parses a command's flags. Help goes to stdout and says so (help is true); a flag error is a
// usage error (exit 2) that points at --help. pflag itself prints nothing.
func parseFlags(fl *pflag.FlagSet, args []string, stdout io.Writer) (help bool, err error) {
	fl.SetOutput(io.Discard)
	fl.Usage = func() {}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			if c, ok := lookup(fl.Name()); ok {
				commandUsage(stdout, c)
			}
			return true, nil
		}
		return false, &exitError{code: 2, err: fmt.Errorf("%v (see 'scratchpack %s --help')", err, fl.Name())}
	}
	return false, nil
}

// runVersion prints the version.
func runVersion(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		if args[0] == "--help" || args[0] == "-h" {
			c, _ := lookup("version")
			commandUsage(stdout, c)
			return nil
		}
		return &exitError{code: 2, err: errors.New("version takes no arguments")}
	}
	fmt.Fprintln(stdout, version())
	return nil
}

// version is "scratchpack VERSION (REVISION[, modified], GO)" from the build information Go records.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "scratchpack (unknown version: built without module information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if rev == "" {
		rev = "unknown revision"
	}
	return fmt.Sprintf("scratchpack %s (%s%s, %s)", v, rev, modified, bi.GoVersion)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help":
		usage(stdout)
		return 0
	case "help":
		if len(args) > 1 {
			if c, ok := lookup(args[1]); ok {
				commandUsage(stdout, c)
				return 0
			}
			fmt.Fprintf(stderr, "scratchpack help: unknown command %q\n", args[1])
			return 2
		}
		usage(stdout)
		return 0
	case "--version":
		fmt.Fprintln(stdout, version())
		return 0
	}
	c, ok := lookup(args[0])
	if !ok {
		hint := ""
		if strings.HasPrefix(args[0], "-") {
			hint = " (flags come after the command)"
		}
		fmt.Fprintf(stderr, "scratchpack: unknown command %q%s; run 'scratchpack --help' for the commands\n", args[0], hint)
		return 2
	}
	err := c.run(args[1:], stdout, stderr)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "scratchpack %s: %s\n", c.name, quoteControl(ee.err.Error()))
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "scratchpack %s: %s\n", c.name, quoteControl(err.Error()))
	return 1
}

// quoteControl writes the control bytes of s (but newline and tab) and invalid UTF-8 as \xNN escapes, so
// that a hostile file name (a DT_NEEDED with terminal escape sequences) cannot drive the terminal.
func quoteControl(s string) string {
	if !strings.ContainsFunc(s, needsQuote) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 || needsQuote(r) {
			fmt.Fprintf(&b, "\\x%02x", s[i])
			i++
			continue
		}
		b.WriteString(s[i : i+n])
		i += n
	}
	return b.String()
}

// quoteWriter applies quoteControl to everything written through it (each Write whole: callers write whole
// lines or strings).
type quoteWriter struct{ w io.Writer }

func (q quoteWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(q.w, quoteControl(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func needsQuote(r rune) bool {
	return r != '\n' && r != '\t' && (r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0)
}

func main() {
	// deps is short-lived and allocation-heavy (parsing every object of a closure): collecting garbage less
	// often makes it 15% faster over this machine's whole /usr for a few MiB more. A build keeps a tree of
	// entries as long as it runs, so it keeps the default, with a soft limit: its memory stays within 64 MiB
	// plus about 1 KiB per entry. GOGC and GOMEMLIMIT, if set, still win.
	deps := len(os.Args) > 1 && os.Args[1] == "deps"
	if deps && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if deps && os.Getenv("GOMAXPROCS") == "" {
		// Resolving is mostly short system calls (open, pread and close of thousands of files), during which
		// a goroutine keeps its P: twice as many Ps as CPUs keep the CPUs busy (bench/deps.sh: about 10%).
		runtime.GOMAXPROCS(2 * runtime.GOMAXPROCS(0))
	}
	if !deps && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(48 << 20)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
