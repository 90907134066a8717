package collector

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPythonImports(t *testing.T) {
	src := `"""Docstring: import notamodule"""
import os, sys as system
from json import decoder, encoder
from . import sibling
from ..pkg.mod import x as y
if True: import ssl
try:
    import _winapi  # optional
except ImportError:
    pass
s = "import nope"
from x import (a,
    b)
__import__("literal.mod")
mod = importlib.import_module(name)
`
	imports, dynamic := pythonImports([]byte(src))
	var got []string
	for _, imp := range imports {
		got = append(got, imp.module+"|"+fmtNames(imp.names)+"|"+string(rune('0'+imp.level)))
	}
	want := []string{"literal.mod||0", "os||0", "sys||0", "json|decoder,encoder|0", "|sibling|1", "pkg.mod|x|2", "ssl||0", "_winapi||0", "x|a,b|0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("imports (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{15}, dynamic); diff != "" {
		t.Errorf("dynamic lines (-want +got):\n%s", diff)
	}
}

func fmtNames(n []string) string {
	out := ""
	for i, s := range n {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

func TestPerlStatements(t *testing.T) {
	src := "#!/usr/bin/perl\nuse strict;\nuse v5.36;\nuse POSIX qw(floor);\nrequire Foo::Bar;\nuse parent -norequire, 'Base::Class';\nuse base qw(A::B C);\n# use Commented;\n=pod\n\nuse InPod;\n\n=cut\nmy $m = 'X'; require $m;\n__END__\nuse AfterEnd;\n"
	var got []string
	for _, st := range perlStatements([]byte(src)) {
		if st.dynamic {
			got = append(got, "dynamic")
		} else {
			got = append(got, st.name)
		}
	}
	want := []string{"strict", "POSIX", "Foo::Bar", "parent", "base", "Base::Class", "A::B", "C", "dynamic"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statements (-want +got):\n%s", diff)
	}
}

// FuzzScriptParsers: whatever a script holds, the Python and Perl statement parsers neither panic nor
// return a module name that is not one.
func FuzzScriptParsers(f *testing.F) {
	f.Add([]byte("import os, sys as s\nfrom . import x\nfrom (a) import b\n\"\"\"unterminated"))
	f.Add([]byte("use strict;\nrequire Foo::Bar;\n=pod\nuse X;\n=cut\nuse parent qw(A B);\n__END__\n"))
	f.Add([]byte("from x import (\n a,\n b\\\n)\n'''\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		imports, _ := pythonImports(src)
		for _, imp := range imports {
			if imp.module != "" && !isDottedName(imp.module) {
				t.Fatalf("python: module %q", imp.module)
			}
		}
		for _, st := range perlStatements(src) {
			if !st.dynamic && st.name == "" {
				t.Fatalf("perl: empty module name")
			}
		}
	})
}

// TestScriptParsersLinear: a 1 MiB script of statements parses in linear time (a quadratic line count took
// minutes); the bound only catches a hang.
func TestScriptParsersLinear(t *testing.T) {
	src := bytes.Repeat([]byte("use A::B;\nrequire C;\nimport x\n__import__('y')\n"), 1<<20/48)
	done := make(chan struct{})
	go func() {
		pythonImports(src)
		perlStatements(src)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("parsing a 1 MiB script did not finish in 20 s")
	}
}

// Imports in a module's top-level `if __name__ == "__main__":` block are marked: they run only when the
// file is the script itself (heapq's doctest, for one).
func TestPythonMainBlock(t *testing.T) {
	src := `import os
def f():
    import json
if __name__ == "__main__":
    import doctest
    if True:
        from pdb import set_trace

    # a comment at the block's indent
    import unittest
import sys
if __name__ == '__main__': import timeit
if other == "__main__":
    import csv
`
	imports, _ := pythonImports([]byte(src))
	var got []string
	for _, imp := range imports {
		if imp.main {
			got = append(got, imp.module)
		}
	}
	if diff := cmp.Diff([]string{"doctest", "pdb", "unittest", "timeit"}, got); diff != "" {
		t.Errorf("imports in the main block (-want +got):\n%s", diff)
	}
}
