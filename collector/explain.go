package collector

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// maxExplainDepth bounds a reason chain (a loop of Via links must not print forever).
const maxExplainDepth = 12

// maxExplainReasons is how many reasons of one path are printed (a /lib link is on the way to everything).
const maxExplainReasons = 3

// Explain writes, for every path of the tree that something asked for, why it is there and the chain that
// led to it: "needed by X (runpath of Y)", then X's own reason, up to the input or the rule that started it.
// Directories made only as parents are left out.
func (t *Tree) Explain(w io.Writer) error {
	for _, e := range t.Entries() {
		if len(e.Origins) == 0 {
			continue
		}
		kind := ""
		switch e.Kind {
		case KindSymlink:
			kind = " -> " + e.Target
		case KindDir:
			kind = "/"
		}
		if _, err := fmt.Fprintf(w, "%s%s\n", e.Path, kind); err != nil {
			return err
		}
		why := e.Why()
		for i, reason := range why {
			if i == maxExplainReasons {
				fmt.Fprintf(w, "    (and %d more)\n", len(why)-i)
				break
			}
			fmt.Fprintf(w, "    %s\n", reason)
		}
		if e.Stripped != 0 {
			fmt.Fprintf(w, "    %s removed\n", specialNames(e.Stripped))
		}
		if e.CapabilityStripped {
			fmt.Fprintf(w, "    file capabilities removed\n")
		}
		seen := map[*Entry]bool{e: true}
		cur := e
		for depth := 0; depth < maxExplainDepth; depth++ {
			by := firstBy(cur)
			if by == "" {
				break
			}
			next := t.Resolve(by)
			if next == nil || seen[next] || len(next.Origins) == 0 {
				break
			}
			seen[next] = true
			fmt.Fprintf(w, "    %s<- %s: %s\n", strings.Repeat("  ", depth), by, next.Origins[0].Reason)
			cur = next
		}
	}
	return nil
}

// firstBy is the image path of what pulled e in first, or "".
func firstBy(e *Entry) string {
	for _, o := range e.Origins {
		if o.By != "" {
			return o.By
		}
	}
	return ""
}

// specialNames names setuid, setgid and sticky bits: "setuid+setgid".
func specialNames(m fs.FileMode) string {
	var names []string
	for _, b := range []struct {
		bit  fs.FileMode
		name string
	}{{fs.ModeSetuid, "setuid"}, {fs.ModeSetgid, "setgid"}, {fs.ModeSticky, "sticky"}} {
		if m&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	return strings.Join(names, "+")
}
