package collector

import (
	"fmt"
)

// shellRule adds /bin/sh when the closure calls what runs a command through it: glibc's system and popen
// exec "/bin/sh -c" (so do posix_spawn-based popen replacements, which import these names too).
type shellRule struct{}

func (shellRule) Name() string { return "shell" }

func (shellRule) Summary() string {
	return "/bin/sh, when the closure imports system or popen (glibc runs the command with /bin/sh -c)"
}

func (shellRule) Apply(v View, _ RuleOptions) ([]string, error) {
	if glibcLibc(v) == "" {
		return nil, nil
	}
	if _, ok := v.Entry("/bin/sh"); ok {
		return nil, nil
	}
	who, sym := v.Importers("system", "popen")
	if len(who) == 0 {
		return nil, nil
	}
	if _, err := v.Lookup("/bin/sh"); err != nil {
		return []string{fmt.Sprintf("the root has no /bin/sh, which %s runs commands with (it imports %s)", who[0], sym[0])}, nil
	}
	why := fmt.Sprintf("%s imports %s, which runs /bin/sh -c", who[0], sym[0])
	if err := v.AddRootPath("/bin/sh", ruleOrigin("shell", why, who[0])); err != nil {
		return nil, err
	}
	return []string{"added /bin/sh: " + why}, nil
}
