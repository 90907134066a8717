package elfdeps

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps elfdeps pure: ELF parsing and loader rules over an fs.FS, importing neither the
// collector nor any image code (go-containerregistry's cmd/crane/depcheck_test.go keeps the same kind of
// rule). It asks the go command for the package's whole import graph.
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps printed %d packages: %q", len(deps), deps)
	}
	for _, d := range deps {
		for _, banned := range []string{"github.com/google/go-containerregistry", "github.com/scratchpack/scratchpack/collector",
			"github.com/scratchpack/scratchpack/internal", "github.com/u-root/u-root"} {
			if d == banned || strings.HasPrefix(d, banned+"/") {
				t.Errorf("elfdeps depends on %s", d)
			}
		}
	}
}
