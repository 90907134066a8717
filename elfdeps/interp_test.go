package elfdeps

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSystemDirsFromInterpreter reads SYSTEM_DIRS out of this machine's ld.so and compares them with what
// `ld.so --help` prints as the system search path (Debian 12 x86-64).
func TestSystemDirsFromInterpreter(t *testing.T) {
	data, err := os.ReadFile(hostRTLD)
	if err != nil {
		t.Skipf("no glibc loader: %v", err)
	}
	out, err := exec.Command(hostRTLD, "--help").Output()
	if err != nil {
		t.Fatalf("%s --help: %v", hostRTLD, err)
	}
	var want []string
	for _, line := range strings.Split(string(out), "\n") {
		if dir, ok := strings.CutSuffix(strings.TrimSpace(line), " (system search path)"); ok {
			want = append(want, dir+"/")
		}
	}
	if len(want) == 0 {
		t.Fatalf("%s --help lists no system search path:\n%s", hostRTLD, out)
	}
	if diff := cmp.Diff(want, systemDirsIn(data)); diff != "" {
		t.Errorf("system dirs (-ld.so --help +read):\n%s", diff)
	}
	synthetic := append([]byte("junk\x00/not/a/dir\x00/x/\x00"), []byte("\x00/lib64/\x00/usr/lib64/\x00more")...)
	if diff := cmp.Diff([]string{"/lib64/", "/usr/lib64/"}, systemDirsIn(synthetic)); diff != "" {
		t.Errorf("a Fedora-style list (-want +got):\n%s", diff)
	}
	// Debian 12 armhf's ld.so: the list follows a literal pool, with no NUL before it.
	armhf := []byte("\x0f\xf0\x8c\xe0\x98\xe5\xff\xff/lib/arm-linux-gnueabihf/\x00/usr/lib/arm-linux-gnueabihf/\x00/lib/\x00/usr/lib/\x00\x19\x00")
	if diff := cmp.Diff([]string{"/lib/arm-linux-gnueabihf/", "/usr/lib/arm-linux-gnueabihf/", "/lib/", "/usr/lib/"}, systemDirsIn(armhf)); diff != "" {
		t.Errorf("armhf's list (-want +got):\n%s", diff)
	}
	if got := systemDirsIn([]byte("text/lib/x/\x00/usr/lib/\x00")); got != nil {
		t.Errorf("a list starting inside a string: %v", got)
	}
	if got := systemDirsIn([]byte("no dirs here\x00/etc/\x00")); got != nil {
		t.Errorf("found %v where there is no list", got)
	}
}
