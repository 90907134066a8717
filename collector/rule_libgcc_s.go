package collector

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// libgccSRule adds libgcc_s.so.1, which glibc dlopens to unwind the stack.
type libgccSRule struct{}

func (libgccSRule) Name() string { return "libgcc_s" }

func (libgccSRule) Summary() string {
	return "libgcc_s.so.1, which glibc dlopens to unwind for pthread_cancel, pthread_exit and backtrace, when the closure imports them"
}

func (libgccSRule) Apply(v View, _ RuleOptions) ([]string, error) {
	if glibcLibc(v) == "" || slices.ContainsFunc(v.Libraries(), func(l string) bool { return path.Base(l) == "libgcc_s.so.1" }) {
		return nil, nil
	}
	who, sym := v.Importers("pthread_cancel", "pthread_exit", "backtrace")
	if len(who) == 0 {
		return nil, nil
	}
	why := fmt.Sprintf("glibc dlopens it to unwind: %s imports %s", who[0], sym[0])
	added, err := v.Dlopen("libgcc_s.so.1", ruleOrigin("libgcc_s", why, who[0]))
	if err != nil {
		return []string{"libgcc_s.so.1 is not in the root: " + why + ", which will abort at run time"}, nil
	}
	return []string{fmt.Sprintf("added %s: %s", strings.Join(added, ", "), why)}, nil
}
