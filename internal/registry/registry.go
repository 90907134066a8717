// Package registry reaches container registries under one rule: plain HTTP only when asked (insecure) or
// for a registry of this machine (loopback); otherwise every request, redirects and token fetches included,
// must be HTTPS.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ErrNotHTTPS is returned (wrapped) for a plain-HTTP request to a registry that is neither loopback nor
// allowed as insecure.
var ErrNotHTTPS = errors.New("not HTTPS (plain HTTP is allowed only for loopback registries unless insecure)")

// Ref parses a registry reference ("host[:port]/repo:tag" or "...@sha256:...") and returns the remote
// options that reach it: the context, the credentials of the Docker config (as docker and crane find them),
// and, unless insecure or the registry is a loopback one, a transport that refuses plain HTTP.
func Ref(ctx context.Context, ref string, insecure bool) (name.Reference, []remote.Option, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, nil, fmt.Errorf("image reference %q: %w", ref, err)
	}
	loopback := IsLoopback(r.Context().RegistryStr())
	if insecure || loopback {
		if r, err = name.ParseReference(ref, name.Insecure); err != nil {
			return nil, nil, fmt.Errorf("image reference %q: %w", ref, err)
		}
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	switch {
	case !insecure && !loopback:
		// go-containerregistry would also fall back to HTTP for private (RFC 1918) and *.localhost hosts.
		opts = append(opts, remote.WithTransport(httpsOnly{next: remote.DefaultTransport}))
	case !insecure:
		// A loopback registry is reached over plain HTTP, but what it points at is not: a token realm or a
		// redirect (a blob's Location) on another host must be HTTPS, or credentials and layers would
		// cross the network in clear.
		opts = append(opts, remote.WithTransport(httpsOnly{next: remote.DefaultTransport, loopbackHTTP: true}))
	}
	return r, opts, nil
}

// IsLoopback reports whether a registry host[:port] is this machine: localhost, 127.0.0.0/8 or ::1.
func IsLoopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpsOnly refuses plain-HTTP requests, but to a loopback host when loopbackHTTP.
type httpsOnly struct {
	next         http.RoundTripper
	loopbackHTTP bool
}

func (h httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !(h.loopbackHTTP && IsLoopback(req.URL.Host)) {
		return nil, fmt.Errorf("refusing %s %s: %w", req.Method, req.URL.Redacted(), ErrNotHTTPS)
	}
	return h.next.RoundTrip(req)
}
