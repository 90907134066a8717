package collector

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// BaseFiles says which of the small files every real program quietly reads go into the image.
type BaseFiles struct {
	// User is the --user value (NAME, UID, NAME:GROUP or UID:GID). A NAME gets its own passwd and group
	// lines (from the root's /etc/passwd when it has one, else a new UID/GID 1000).
	User string
	// Certs is "auto" (the CA bundle when the closure holds a TLS library), "always" or "never".
	Certs string
	// TZData adds the root's /usr/share/zoneinfo.
	TZData bool
}

// caBundle is where Debian (and OpenSSL, GnuTLS and curl as Debian builds them) find the CA certificates.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// caLinks are the paths other TLS builds look at for the same bundle (Fedora/RHEL, Alpine/OpenSSL's
// default cert.pem, OpenSSL's OPENSSLDIR on Debian); each is made a symbolic link to the bundle.
var caLinks = map[string]string{
	"/etc/pki/tls/certs/ca-bundle.crt": "../../../ssl/certs/ca-certificates.crt",
	"/etc/ssl/cert.pem":                "certs/ca-certificates.crt",
	"/usr/lib/ssl/cert.pem":            "../../../etc/ssl/certs/ca-certificates.crt",
}

// tlsLibraries are the sonames (prefixes) whose presence in a closure means the program may verify TLS
// certificates and needs a CA bundle.
var tlsLibraries = []string{"libssl.so", "libgnutls.so", "libnss3.so", "libmbedtls.so", "libwolfssl.so", "libcurl.so",
	"libcurl-gnutls.so", "libcurl-nss.so"}

func userNote(user string) string {
	name, _, _ := strings.Cut(user, ":")
	if name == "" || isNumber(name) {
		return ""
	}
	return ", " + name
}

// tlsLibrary returns the first TLS library of the closure, or "".
func (p *Planner) tlsLibrary() string {
	for _, lib := range p.Libraries {
		base := path.Base(lib)
		for _, t := range tlsLibraries {
			if strings.HasPrefix(base, t) {
				return base
			}
		}
	}
	return ""
}

func (p *Planner) addCerts(why string) (string, error) {
	if err := p.AddRootPath(caBundle, why); err != nil {
		return "", fmt.Errorf("adding the CA bundle: %w (install ca-certificates in the root, or --certs never)", err)
	}
	for link, target := range caLinks {
		if p.tree.Get(link) != nil {
			continue
		}
		if err := p.tree.Add(Entry{Path: link, Kind: KindSymlink, Target: target, Why: []string{why + " (where other TLS builds look)"}}); err != nil {
			return "", err
		}
	}
	return "added " + caBundle + ": " + why, nil
}

var nsswitchFile = struct{ path, content, why string }{"/etc/nsswitch.conf", `# Written by scratchpack: files first, then DNS for hosts.
passwd:    files
group:     files
shadow:    files
hosts:     files dns
networks:  files
protocols: files
services:  files
ethers:    files
rpc:       files
`, ruleWhy("nsswitch", "tells glibc's NSS to use these files and DNS")}

var hostsFile = struct{ path, content, why string }{"/etc/hosts", `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
`, ruleWhy("hosts", "localhost resolves without DNS")}

// accounts builds /etc/passwd and /etc/group: root, nobody/nogroup, and the named user.
func (p *Planner) accounts(user string) (passwd, group string) {
	pw := []string{"root:x:0:0:root:/root:/sbin/nologin", "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin"}
	gr := []string{"root:x:0:", "nogroup:x:65534:"}
	name, grp, _ := strings.Cut(user, ":")
	if name != "" && !isNumber(name) && name != "root" && name != "nobody" {
		uid, gid, home := "1000", "1000", "/home/"+name
		if fields := p.rootAccount("/etc/passwd", name); len(fields) >= 6 {
			uid, gid, home = fields[2], fields[3], fields[5]
		}
		if grp != "" && isNumber(grp) {
			gid = grp
		}
		pw = append(pw, fmt.Sprintf("%s:x:%s:%s::%s:/sbin/nologin", name, uid, gid, home))
		gname := name
		if grp != "" && !isNumber(grp) {
			gname = grp
			if fields := p.rootAccount("/etc/group", grp); len(fields) >= 3 {
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
func (p *Planner) rootAccount(file, name string) []string {
	l, err := p.resolvers[0].Lookup(file)
	if err != nil || !l.Mode.IsRegular() {
		return nil
	}
	f, err := os.Open(p.host(l.RealPath))
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
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
