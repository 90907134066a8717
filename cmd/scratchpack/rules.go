package main

import (
	"fmt"
	"io"

	"github.com/scratchpack/scratchpack/collector"
)

// runRules prints every rule build applies: name and what it adds when.
func runRules(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		if args[0] == "--help" || args[0] == "-h" {
			c, _ := lookup("rules")
			commandUsage(stdout, c)
			return nil
		}
		return &exitError{code: 2, err: fmt.Errorf("rules takes no arguments")}
	}
	fmt.Fprintln(stdout, "Rules `scratchpack build` applies, in order (switch one off with --no-rule NAME):")
	for _, r := range collector.Rules() {
		fmt.Fprintf(stdout, "  %-12s %s\n", r.Name(), r.Summary())
	}
	return nil
}
