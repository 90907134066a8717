package elfdeps

import "testing"

// TestNeedsConfig: an object found only through ld.so.conf's directories (a root without a cache) or musl's
// path file says so; one in a directory the loader searches anyway does not.
func TestNeedsConfig(t *testing.T) {
	needsConfig := func(want map[string]bool) func(t *testing.T, res *Result) {
		return func(t *testing.T, res *Result) {
			for _, o := range res.Objects {
				if w, ok := want[o.Path]; ok && o.NeedsConfig != w {
					t.Errorf("%s (%s): NeedsConfig = %v, want %v", o.Path, o.How, o.NeedsConfig, w)
				}
				delete(want, o.Path)
			}
			if len(want) > 0 {
				t.Errorf("not mapped: %v", want)
			}
		}
	}
	runResolveCases(t, []resolveCase{
		{
			name: "glibc: ld.so.conf without a cache",
			root: synthRoot{
				"/etc/ld.so.conf":                            synthText("/opt/conf\n" + dirL + "\n"),
				"/opt/conf/libconf.so.1":                     synthOpts{Soname: "libconf.so.1"},
				dirL + "/libsys.so.1":                        synthOpts{Soname: "libsys.so.1"},
				dirL + "/glibc-hwcaps/x86-64-v3/libv.so.1":   synthOpts{Soname: "libv.so.1"},
				"/opt/conf/glibc-hwcaps/x86-64-v3/libw.so.1": synthOpts{Soname: "libw.so.1"},
				synthProg: synthExe(synthOpts{Needed: []string{"libconf.so.1", "libsys.so.1", "libv.so.1", "libw.so.1"}}),
			},
			want: []objView{
				{"/opt/conf/libconf.so.1", HowConf, ""},
				{dirL + "/libsys.so.1", HowConf, ""},
				{dirL + "/glibc-hwcaps/x86-64-v3/libv.so.1", HowConf, ""},
				{"/opt/conf/glibc-hwcaps/x86-64-v3/libw.so.1", HowConf, ""},
				rtldView,
			},
			check: needsConfig(map[string]bool{
				"/opt/conf/libconf.so.1": true, dirL + "/libsys.so.1": false,
				dirL + "/glibc-hwcaps/x86-64-v3/libv.so.1": false, "/opt/conf/glibc-hwcaps/x86-64-v3/libw.so.1": true,
			}),
		},
		{
			name:       "musl: the path file",
			wantFlavor: FlavorMusl,
			root: synthRoot{
				synthMuslPath:              synthOpts{Soname: "libc.musl-x86_64.so.1"},
				"/etc/ld-musl-x86_64.path": synthText("/opt/m\n/usr/lib\n"),
				"/opt/m/libm1.so.1":        synthOpts{Soname: "libm1.so.1"},
				"/usr/lib/libm2.so.1":      synthOpts{Soname: "libm2.so.1"},
				synthProg:                  synthMuslExe(synthOpts{Needed: []string{"libm1.so.1", "libm2.so.1"}}),
			},
			want: []objView{
				{"/opt/m/libm1.so.1", HowMuslPath, ""},
				{"/usr/lib/libm2.so.1", HowMuslPath, ""},
				{synthMuslPath, HowInterp, ""},
			},
			check: needsConfig(map[string]bool{"/opt/m/libm1.so.1": true, "/usr/lib/libm2.so.1": false}),
		},
	})
	if got := MuslPathFile("/lib/ld-musl-aarch64.so.1"); got != "/etc/ld-musl-aarch64.path" {
		t.Errorf("MuslPathFile = %q", got)
	}
	if got := MuslPathFile("/opt/musl/lib/ld-musl-x86_64.so.1"); got != "/opt/musl/etc/ld-musl-x86_64.path" {
		t.Errorf("MuslPathFile = %q", got)
	}
}
