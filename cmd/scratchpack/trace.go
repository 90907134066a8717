package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/scratchpack/scratchpack/collector"
)

// traceAfterDash is --trace's value when given alone: trace the command after "--".
const traceAfterDash = "--"

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

// traceEnv is the traced workload's environment: what the image's program will see (a usual PATH, HOME,
// LANG, then the image's --env values), on top of the caller's own with --trace-inherit-env, then the
// --trace-env values. A later value of a variable replaces an earlier one in place, so that the program's
// getenv and the PATH lookup of the command agree.
func traceEnv(inherited, image, extra []string) []string {
	return collector.MergeEnv(inherited, []string{"PATH=" + collector.DefaultPath, "HOME=/root", "LANG=C.UTF-8"}, image, extra)
}
