package collector

import (
	"fmt"
	"path"
)

// javaRule adds what an OpenJDK launcher finds from its own location at run time: the launcher's
// libjli.so sits in JAVA_HOME/lib, and from there it loads lib/server/libjvm.so, the modules image, its
// configuration (conf/, lib/jvm.cfg, lib/security; Debian links them to /etc/java-17-openjdk) and the
// lib/*.so its classes load. No path to them is in its data, so the literals rule cannot see them.
type javaRule struct{}

func (javaRule) Name() string { return "java" }

func (javaRule) Summary() string {
	return "an OpenJDK's JAVA_HOME/lib, conf and release when a program's closure holds its launcher's libjli.so"
}

// javaCompileOnly are files of JAVA_HOME/lib only compilers read.
var javaCompileOnly = map[string]bool{"ct.sym": true, "src.zip": true}

func (javaRule) Apply(v View, _ RuleOptions) ([]string, error) {
	var notes []string
	done := map[string]bool{}
	for _, lib := range v.Libraries() {
		if path.Base(lib) != "libjli.so" {
			continue
		}
		l, err := v.Lookup(lib)
		if err != nil || path.Base(path.Dir(l.RealPath)) != "lib" {
			continue
		}
		home := path.Dir(path.Dir(l.RealPath))
		if done[home] {
			continue
		}
		done[home] = true
		why := fmt.Sprintf("the Java launcher's %s loads its JVM, modules and configuration from %s", lib, home)
		o := ruleOrigin("java", why, lib)
		added := 0
		for _, sub := range []string{"lib", "conf", "release"} {
			p := path.Join(home, sub)
			sl, err := v.Lookup(p)
			if err != nil {
				continue
			}
			if !sl.Mode.IsDir() {
				if err := v.AddRootPath(p, o); err != nil {
					return nil, err
				}
				added++
				continue
			}
			files, err := rootFiles(v, sl.RealPath)
			if err != nil {
				return nil, err
			}
			for _, f := range files {
				if javaCompileOnly[path.Base(f)] {
					continue
				}
				if fl, err := v.Lookup(f); err != nil || !fl.Mode.IsRegular() {
					continue // a link the root does not resolve (a package not installed)
				}
				if err := v.AddRootPath(f, o); err != nil {
					return nil, err
				}
				added++
			}
		}
		notes = append(notes, fmt.Sprintf("added %d files of %s: %s", added, home, why))
	}
	return notes, nil
}
