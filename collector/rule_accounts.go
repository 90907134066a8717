package collector

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// accountsRule writes /etc/passwd and /etc/group: root, nobody/nogroup, and the image's named user (with
// the root's own ids for that name when its /etc/passwd has them).
type accountsRule struct{}

func (accountsRule) Name() string { return "accounts" }

func (accountsRule) Summary() string {
	return "/etc/passwd and /etc/group with root, nobody and the --user: getpwnam, getpwuid, initgroups"
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
	return notes, nil
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
		uid, gid, home := "1000", "1000", "/home/"+name
		if fields := rootAccount(v, "/etc/passwd", name); len(fields) >= 6 {
			uid, gid, home = fields[2], fields[3], fields[5]
		}
		if grp != "" && isNumber(grp) {
			gid = grp
		}
		pw = append(pw, fmt.Sprintf("%s:x:%s:%s::%s:/sbin/nologin", name, uid, gid, home))
		gname := name
		if grp != "" && !isNumber(grp) {
			gname = grp
			if fields := rootAccount(v, "/etc/group", grp); len(fields) >= 3 {
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
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if fields[0] == name {
			return fields
		}
	}
	return nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}
