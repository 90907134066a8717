package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/scratchpack/scratchpack/collector"
	"github.com/scratchpack/scratchpack/internal/trace"
)

// traceAfterDash is --trace's value when given alone: trace the command after "--".
const traceAfterDash = "\x00after-dash"

// traceWorkloads turns the --trace values and the command after "--" into argv lists.
func traceWorkloads(values, afterDash []string) ([][]string, error) {
	var out [][]string
	usedDash := false
	for _, v := range values {
		if v == traceAfterDash {
			if len(afterDash) == 0 {
				return nil, errors.New("--trace without a value traces the command after --, and there is none")
			}
			if !usedDash {
				out = append(out, afterDash)
				usedDash = true
			}
			continue
		}
		argv, err := splitCommand(v)
		if err != nil {
			return nil, fmt.Errorf("--trace=%q: %w", v, err)
		}
		if len(argv) == 0 {
			return nil, fmt.Errorf("--trace=%q: no command", v)
		}
		out = append(out, argv)
	}
	if len(afterDash) > 0 && !usedDash {
		return nil, fmt.Errorf("a command after -- is only used with --trace: %q", strings.Join(afterDash, " "))
	}
	return out, nil
}

// splitCommand splits a command line as a POSIX shell would split words: whitespace separates, single
// quotes keep everything, double quotes keep everything but \", \\ and \$, a backslash escapes the next
// character. No expansion of any kind happens.
func splitCommand(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				out, inWord = append(out, cur.String()), false
				cur.Reset()
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i, inWord = i+1+j, true
		case c == '"':
			inWord = true
			for i++; ; i++ {
				if i >= len(s) {
					return nil, errors.New("unterminated double quote")
				}
				if s[i] == '"' {
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// addTraces runs each workload under ptrace (inside the root when one is given), reads each strace log, and
// adds what they used to the plan.
func addTraces(ctx context.Context, p *collector.Planner, b buildFlags, workloads [][]string, dest collector.Dest, stderr io.Writer) error {
	if len(workloads) == 0 && len(b.traceFiles) == 0 {
		return nil
	}
	output := ""
	if dest.Path != "" {
		if abs, err := filepath.Abs(dest.Path); err == nil {
			output = abs
			if filepath.Clean(b.root) != "/" {
				output = "" // an output outside the root cannot be traced inside it
			}
		}
	}
	ex := collector.DefaultTraceExclude(output)
	for _, argv := range workloads {
		name := strings.Join(argv, " ")
		fmt.Fprintf(stderr, "scratchpack build: --trace runs %q (the only mode of scratchpack that runs anything)\n", name)
		opts := trace.Options{Stdout: stderr, Stderr: stderr, Timeout: b.traceTimeout, Env: traceEnv(b.env)}
		if filepath.Clean(b.root) != "/" {
			opts.Root = b.root
		} else if b.cwd != "" {
			opts.Dir = b.cwd
		}
		accesses, code, err := trace.Run(ctx, argv, opts)
		if err != nil {
			return fmt.Errorf("--trace %q: %w", name, err)
		}
		if code != 0 {
			fmt.Fprintf(stderr, "scratchpack build: warning: %q exited with status %d; its files are added anyway\n", name, code)
		}
		notes, err := p.AddTraced(accesses, name, ex)
		if err != nil {
			return err
		}
		for _, n := range notes {
			fmt.Fprintf(stderr, "scratchpack build: %s\n", n)
		}
	}
	for _, file := range b.traceFiles {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("--trace-file: %w", err)
		}
		cwd := b.traceFileCwd
		if cwd == "" {
			cwd, _ = os.Getwd()
		}
		accesses, err := trace.ParseStrace(f, cwd)
		f.Close()
		if err != nil {
			return fmt.Errorf("--trace-file %s: %w", file, err)
		}
		notes, err := p.AddTraced(accesses, "strace log "+file, ex)
		if err != nil {
			return err
		}
		for _, n := range notes {
			fmt.Fprintf(stderr, "scratchpack build: %s\n", n)
		}
	}
	return nil
}

// traceEnv is the traced workload's environment: a usual PATH plus the image's --env values, so the
// workload sees what the image's program will.
func traceEnv(env []string) []string {
	out := []string{"PATH=" + collector.DefaultPath, "HOME=/root", "LANG=C.UTF-8"}
	return append(out, env...)
}
