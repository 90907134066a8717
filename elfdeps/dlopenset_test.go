package elfdeps

import "testing"

// TestDlopenSet: a library whose DT_NEEDED is the SONAME of another library the program dlopened by path
// resolves to it, whichever was named first; alone it is not found.
func TestDlopenSet(t *testing.T) {
	root := synthRoot{
		synthRTLDPath:                   synthRTLD(),
		dirL + "/libc.so.6":             synthOpts{Soname: "libc.so.6"},
		"/opt/jdk/lib/server/libjvm.so": synthOpts{Soname: "libjvm.so", Needed: []string{"libc.so.6"}},
		"/opt/jdk/lib/libjava.so":       synthOpts{Soname: "libjava.so", Needed: []string{"libjvm.so", "libc.so.6"}},
		"/opt/jdk/bin/java":             synthExe(synthOpts{Needed: []string{"libc.so.6"}}),
	}
	r, err := New(root.mapFS(t), WithCPU(synthCPU))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.DlopenSet("/opt/jdk/bin/java", []string{"/opt/jdk/lib/libjava.so", "/opt/jdk/lib/server/libjvm.so"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) > 0 {
		t.Fatalf("problems: %v", res.Problems)
	}
	var java *Object
	for _, o := range res.Objects {
		if o.Path == "/opt/jdk/lib/libjava.so" {
			java = o
		}
	}
	if java == nil || java.Deps[0] == nil || java.Deps[0].Path != "/opt/jdk/lib/server/libjvm.so" {
		t.Fatalf("libjava.so's libjvm.so: %+v", java)
	}
	alone, err := r.DlopenSet("/opt/jdk/bin/java", []string{"/opt/jdk/lib/libjava.so"})
	if err != nil {
		t.Fatal(err)
	}
	if len(alone.Problems) != 1 {
		t.Errorf("libjava.so alone: problems %v, want libjvm.so not found", alone.Problems)
	}
	if _, err := r.DlopenSet("/opt/jdk/bin/java", []string{"libjava.so"}); err == nil {
		t.Errorf("a name without '/' was accepted")
	}
}
