package collector

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// certsRule adds the root's CA bundle when the closure holds a TLS library (or always, or never).
type certsRule struct{}

func (certsRule) Name() string { return "certs" }

func (certsRule) Summary() string {
	return "the CA bundle /etc/ssl/certs/ca-certificates.crt (+ the paths other TLS builds read) when libssl, libgnutls, libnss3, libmbedtls, libwolfssl or libcurl is in (--certs)"
}

// ErrNoCABundle is returned (wrapped) when certificates are wanted and the root has no CA bundle.
var ErrNoCABundle = errors.New("no CA bundle to add")

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

func (certsRule) Apply(v View, o RuleOptions) ([]string, error) {
	switch o.Base.Certs {
	case "", "auto":
		if lib, by := tlsLibrary(v); lib != "" {
			n, err := addCerts(v, ruleOrigin("certs", "CA certificates because "+lib+" is in", by))
			return []string{n}, err
		}
	case "always":
		n, err := addCerts(v, ruleOrigin("certs", "CA certificates (asked for always)", ""))
		return []string{n}, err
	case "never":
	default:
		return nil, fmt.Errorf("certificates %q: want auto, always or never", o.Base.Certs)
	}
	return nil, nil
}

// tlsLibrary returns the first TLS library of the closure (its file name and image path), or "".
func tlsLibrary(v View) (base, image string) {
	for _, lib := range v.Libraries() {
		base := path.Base(lib)
		if slices.ContainsFunc(tlsLibraries, func(t string) bool { return strings.HasPrefix(base, t) }) {
			return base, lib
		}
	}
	return "", ""
}

func addCerts(v View, o Origin) (string, error) {
	if err := v.AddRootPath(caBundle, o); err != nil {
		return "", fmt.Errorf("%w: %w (install ca-certificates in the root, or build without certificates)", ErrNoCABundle, err)
	}
	links := o
	links.Reason += " (where other TLS builds look)"
	for _, link := range sortedKeys(caLinks) {
		if _, err := v.AddSymlink(link, caLinks[link], links); err != nil {
			return "", err
		}
	}
	return "added " + caBundle + ": " + strings.TrimPrefix(o.Reason, "certs rule: "), nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
