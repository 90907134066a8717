package collector

import (
	"testing"

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
