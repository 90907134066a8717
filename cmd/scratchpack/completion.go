package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

const completionAbout = `Prints a completion script for the shell named:
  bash:  source <(scratchpack completion bash)        (or save it under /etc/bash_completion.d/)
  zsh:   source <(scratchpack completion zsh)         (bash's completion through bashcompinit)
  fish:  scratchpack completion fish | source         (or save it as ~/.config/fish/completions/scratchpack.fish)`

// runCompletion prints a shell completion script made from the commands and their flags.
func runCompletion(args []string, stdout, stderr io.Writer) error {
	if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
		c, _ := lookup("completion")
		commandUsage(stdout, c)
		return nil
	}
	if len(args) != 1 {
		return &exitError{code: 2, err: errors.New("completion takes one shell: bash, zsh or fish")}
	}
	switch args[0] {
	case "bash":
		_, err := io.WriteString(stdout, bashCompletion())
		return err
	case "zsh":
		_, err := io.WriteString(stdout, "#compdef scratchpack\nautoload -U +X bashcompinit && bashcompinit\n"+bashCompletion())
		return err
	case "fish":
		_, err := io.WriteString(stdout, fishCompletion())
		return err
	}
	return &exitError{code: 2, err: fmt.Errorf("completion: unknown shell %q (want bash, zsh or fish)", args[0])}
}

// flagNames lists a command's flags as they are typed: --name, and -x for a shorthand.
func flagNames(c command) []string {
	if c.flags == nil {
		return []string{"--help"}
	}
	var out []string
	c.flags().VisitAll(func(f *pflag.Flag) {
		out = append(out, "--"+f.Name)
		if f.Shorthand != "" {
			out = append(out, "-"+f.Shorthand)
		}
	})
	return append(out, "--help")
}

// takesValue lists the flags that take a value, for a completion that offers files after them.
func takesValue(c command) []string {
	if c.flags == nil {
		return nil
	}
	var out []string
	c.flags().VisitAll(func(f *pflag.Flag) {
		if f.Value.Type() != "bool" {
			out = append(out, "--"+f.Name)
		}
	})
	return out
}

func bashCompletion() string {
	var b strings.Builder
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	names = append(names, "help")
	b.WriteString("# bash completion for scratchpack (scratchpack completion bash)\n")
	b.WriteString("_scratchpack() {\n")
	b.WriteString("\tlocal cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\" opts=\"\"\n")
	fmt.Fprintf(&b, "\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n\t\tCOMPREPLY=($(compgen -W %q -- \"$cur\"))\n\t\treturn\n\tfi\n", strings.Join(names, " ")+" --help --version")
	b.WriteString("\tcase \"${COMP_WORDS[1]}\" in\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "\t%s) opts=%q ;;\n", c.name, strings.Join(flagNames(c), " "))
	}
	fmt.Fprintf(&b, "\thelp) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", strings.Join(names[:len(names)-1], " "))
	b.WriteString("\tesac\n")
	b.WriteString("\tif [ \"${COMP_WORDS[1]}\" = completion ]; then\n\t\tCOMPREPLY=($(compgen -W \"bash zsh fish\" -- \"$cur\"))\n\t\treturn\n\tfi\n")
	b.WriteString("\tif [[ \"$cur\" == -* ]]; then\n\t\tCOMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n\telse\n\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n\tfi\n")
	b.WriteString("}\ncomplete -o filenames -F _scratchpack scratchpack\n")
	return b.String()
}

func fishCompletion() string {
	var b strings.Builder
	b.WriteString("# fish completion for scratchpack (scratchpack completion fish)\n")
	b.WriteString("complete -c scratchpack -f -n __fish_use_subcommand -l help -d 'show help'\n")
	b.WriteString("complete -c scratchpack -f -n __fish_use_subcommand -l version -d 'print the version'\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "complete -c scratchpack -f -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	b.WriteString("complete -c scratchpack -f -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'\n")
	for _, c := range commands() {
		if c.flags == nil {
			continue
		}
		values := takesValue(c)
		c.flags().VisitAll(func(f *pflag.Flag) {
			line := fmt.Sprintf("complete -c scratchpack -n '__fish_seen_subcommand_from %s' -l %s", c.name, f.Name)
			if f.Shorthand != "" {
				line += " -s " + f.Shorthand
			}
			if slices.Contains(values, "--"+f.Name) {
				line += " -r"
			}
			usage, _, _ := strings.Cut(f.Usage, ";")
			b.WriteString(line + " -d " + fishQuote(usage) + "\n")
		})
	}
	return b.String()
}

// fishQuote quotes s for fish: single quotes, with \ and ' escaped.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
