package collector

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/scratchpack/scratchpack/collector/rootfs"
)

// accountsRule writes /etc/passwd and /etc/group: root, nobody/nogroup, and the image's named user (with
// the root's own ids for that name when its /etc/passwd has them, else NonrootID), and makes that user's
// home directory, owned by it.
type accountsRule struct{}

func (accountsRule) Name() string { return "accounts" }

func (accountsRule) Summary() string {
	return "/etc/passwd and /etc/group with root, nobody and the --user (its home directory made, owned by it): getpwnam, getpwuid, initgroups"
}

func (accountsRule) Apply(v View, o RuleOptions) ([]string, error) {
	passwd, group := accounts(v, o.Base.User)
	var notes []string
	for _, f := range []struct{ path, content, why string }{
		{"/etc/passwd", passwd, "account names for getpwnam/getpwuid (root, nobody" + userNote(o.Base.User) + ")"},
		{"/etc/group", group, "group names for getgrnam/getgrgid"},
	} {
		added, err := v.AddData(f.path, []byte(f.content), 0o644, ruleOrigin("accounts", f.why, ""))
		if err != nil {
			return nil, err
		}
		if !added {
			notes = append(notes, f.path+": kept the one given")
		}
	}
	if u, ok := LookupUser(v, o.Base.User); ok && u.Home != "" && u.Home != "/" && u.Home != "/nonexistent" {
		n, err := addHome(v, u)
		if err != nil {
			return nil, err
		}
		notes = append(notes, n...)
	}
	return notes, nil
}

// addHome makes u's home directory, owned by u, unless the image has it already or the root has it owned
// by someone else (a system account's home such as daemon's /usr/sbin is no home to take over).
func addHome(v View, u User) ([]string, error) {
	if _, exists := v.Entry(u.Home); exists {
		return nil, nil
	}
	if l, err := v.Lookup(u.Home); err == nil {
		fi, err := v.Root().Lstat(fsName(l.RealPath))
		if err == nil && rootfs.MetaOf(fi).UID != u.UID {
			return []string{fmt.Sprintf("%s's home %s is the root's, owned by uid %d: left out", u.Name, u.Home, rootfs.MetaOf(fi).UID)}, nil
		}
	}
	return nil, v.AddDir(u.Home, 0o755, u.UID, u.GID, ruleOrigin("accounts", "home directory of "+u.Name, "/etc/passwd"))
}

// NonrootID is the uid and gid a --user NAME gets when the root has no account of that name: distroless's
// "nonroot" id, which no Debian package allocates.
const NonrootID = 65532

// User is an account of the image.
type User struct {
	Name     string
	UID, GID int
	Home     string
}

// LookupUser finds the image's user (NAME, UID, NAME:GROUP or UID:GID) in the image's /etc/passwd and
// /etc/group as planned; a numeric UID without a group has gid 0, as a container runtime gives it.
func LookupUser(v View, user string) (User, bool) {
	name, grp, _ := strings.Cut(user, ":")
	if name == "" {
		return User{}, false
	}
	u := User{Name: name}
	if isNumber(name) {
		u.UID, _ = strconv.Atoi(name)
		if f := accountLine(v, "/etc/passwd", func(f []string) bool { return len(f) >= 6 && f[2] == name }); f != nil {
			u.Name, u.GID, u.Home = f[0], atoi(f[3]), f[5]
		}
	} else {
		f := accountLine(v, "/etc/passwd", func(f []string) bool { return len(f) >= 6 && f[0] == name })
		if f == nil {
			return User{}, false
		}
		u.UID, u.GID, u.Home = atoi(f[2]), atoi(f[3]), f[5]
	}
	switch {
	case grp == "":
	case isNumber(grp):
		u.GID, _ = strconv.Atoi(grp)
	default:
		f := accountLine(v, "/etc/group", func(f []string) bool { return len(f) >= 3 && f[0] == grp })
		if f == nil {
			return User{}, false
		}
		u.GID = atoi(f[2])
	}
	return u, true
}

// accountLine returns the fields of the first line of the image's passwd or group file that match.
func accountLine(v View, file string, match func([]string) bool) []string {
	data, err := v.ReadEntry(file)
	if err != nil {
		return nil
	}
	return firstLine(data, match)
}

// firstLine returns the ':'-separated fields of the first line of an account file that match.
func firstLine(data []byte, match func([]string) bool) []string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if f := strings.Split(sc.Text(), ":"); match(f) {
			return f
		}
	}
	return nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func userNote(user string) string {
	name, _, _ := strings.Cut(user, ":")
	if name == "" || isNumber(name) {
		return ""
	}
	return ", " + name
}

// accounts builds /etc/passwd and /etc/group: root, nobody/nogroup, and the named user.
func accounts(v View, user string) (passwd, group string) {
	pw := []string{"root:x:0:0:root:/root:/sbin/nologin", "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin"}
	gr := []string{"root:x:0:", "nogroup:x:65534:"}
	name, grp, _ := strings.Cut(user, ":")
	if name != "" && !isNumber(name) && name != "root" && name != "nobody" {
		uid, gid, home := strconv.Itoa(NonrootID), strconv.Itoa(NonrootID), "/home/"+name
		// The root's line for name, when it is well formed (a hostile passwd must not make a broken one).
		if fields := rootAccount(v, "/etc/passwd", name); len(fields) >= 6 && isNumber(fields[2]) && isNumber(fields[3]) && strings.HasPrefix(fields[5], "/") {
			uid, gid, home = fields[2], fields[3], fields[5]
		}
		if grp != "" && isNumber(grp) {
			gid = grp
		}
		pw = append(pw, fmt.Sprintf("%s:x:%s:%s::%s:/sbin/nologin", name, uid, gid, home))
		gname := name
		if grp != "" && !isNumber(grp) {
			gname = grp
			if fields := rootAccount(v, "/etc/group", grp); len(fields) >= 3 && isNumber(fields[2]) {
				gid = fields[2]
			}
		}
		if !slices.ContainsFunc(gr, func(l string) bool { return strings.HasPrefix(l, gname+":") }) {
			gr = append(gr, fmt.Sprintf("%s:x:%s:", gname, gid))
		}
	}
	return strings.Join(pw, "\n") + "\n", strings.Join(gr, "\n") + "\n"
}

// rootAccount returns the fields of name's line in the root's passwd or group file, or nil.
func rootAccount(v View, file, name string) []string {
	data, err := v.ReadRootFile(file)
	if err != nil {
		return nil
	}
	return firstLine(data, func(f []string) bool { return f[0] == name })
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// CheckUser validates an image user (NAME, UID, NAME:GROUP or UID:GID) before it is written into account
// lines: names as useradd takes them (a letter or '_' first, then letters, digits, '_', '-', '.'; at most
// 32 bytes), ids from 0 to 2^32-2.
func CheckUser(user string) error {
	if user == "" {
		return nil
	}
	parts := strings.Split(user, ":")
	if len(parts) > 2 {
		return fmt.Errorf("user %q: want NAME, UID, NAME:GROUP or UID:GID", user)
	}
	for _, p := range parts {
		if isNumber(p) {
			if n, _ := strconv.ParseUint(p, 10, 32); n == 1<<32-1 {
				return fmt.Errorf("user %q: id %s is reserved", user, p)
			}
			continue
		}
		if !validAccountName(p) {
			return fmt.Errorf("user %q: %q is not a valid user or group name", user, p)
		}
	}
	return nil
}

func validAccountName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}
