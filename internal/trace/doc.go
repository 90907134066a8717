// Package trace learns which files a workload really uses, for
// `scratchpack build --trace -- COMMAND [ARGS...]`.
//
// Run is the only code in scratchpack that executes anything: it starts the
// user's command under ptrace(2), follows every thread and child, and records
// each file the tree successfully opens, executes, stats, reads as a symlink or
// changes directory into. Everything else in scratchpack parses and never
// executes; this package is reached only through the opt-in --trace mode.
//
// Options.Sandbox runs a command that is not trusted (an image's program,
// for `scratchpack slim --trace`) in namespaces of its own, the image's
// unpacked root as its whole file system, and Options.Probe drives it while it
// runs: WaitListening waits for a server to listen and InNetNS runs a client
// of the host in the sandbox's network; the run ends when the probe returns.
//
// ParseStrace reads the log of an earlier `strace -f -e trace=file,process`
// run and returns the same kind of records, without running anything.
//
// What a trace sees is what one run of the workload did. Code paths the run did
// not take, and files touched in ways that are not path-based syscalls of the
// traced tree, are missing; see Run for the list.
package trace
