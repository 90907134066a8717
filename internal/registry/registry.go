// Package registry reaches container registries under one rule: plain HTTP only when asked (insecure) or
// for a registry of this machine (loopback); otherwise every request, redirects and token fetches included,
// must be HTTPS.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ErrNotHTTPS is returned (wrapped) for a plain-HTTP request to a registry that is neither loopback nor
// allowed as insecure.
var ErrNotHTTPS = errors.New("not HTTPS (plain HTTP is allowed only for loopback registries unless insecure)")

// Ref parses a registry reference ("host[:port]/repo:tag" or "...@sha256:...") and returns the remote
// options that reach it: the context, the credentials of the Docker config (as docker and crane find them),
// and, unless insecure or the registry is a loopback one, a transport that refuses plain HTTP.
func Ref(ctx context.Context, ref string, insecure bool, opts ...Option) (name.Reference, []remote.Option, error) {
	o := options{request: DefaultRequestTimeout, idle: DefaultIdleTimeout}
	for _, opt := range opts {
		opt(&o)
	}
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
	var tr http.RoundTripper = o.transport()
	switch {
	case !insecure && !loopback:
		// go-containerregistry would also fall back to HTTP for private (RFC 1918) and *.localhost hosts.
		tr = httpsOnly{next: tr}
	case !insecure:
		// A loopback registry is reached over plain HTTP, but what it points at is not: a token realm or a
		// redirect (a blob's Location) on another host must be HTTPS, or credentials and layers would
		// cross the network in clear.
		tr = httpsOnly{next: tr, loopbackHTTP: true}
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain{helpers: o.helpers}), remote.WithTransport(tr)}
	return r, ropts, nil
}

// Timeouts of a registry conversation: a connection that moves no byte for DefaultIdleTimeout is dropped,
// and no request (a blob upload included) takes longer than DefaultRequestTimeout.
const (
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultRequestTimeout = 30 * time.Minute
)

// Option tunes how a registry is reached.
type Option func(*options)

type options struct {
	request, idle time.Duration
	helpers       bool
}

// WithCredentialHelpers lets the Docker config's credsStore and credHelpers run their
// docker-credential-NAME programs for credentials (off by default: nothing is run unless asked).
func WithCredentialHelpers(on bool) Option { return func(o *options) { o.helpers = on } }

// WithRequestTimeout bounds each request, its body included (0: no bound).
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.request = d } }

// WithIdleTimeout drops a connection that moves no byte for d (0: never).
func WithIdleTimeout(d time.Duration) Option { return func(o *options) { o.idle = d } }

// transport is go-containerregistry's default transport with the timeouts: a registry that accepts and
// never answers, or trickles, must not hold a build forever.
func (o options) transport() http.RoundTripper {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	idle := o.idle
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil || idle <= 0 {
			return c, err
		}
		return &idleConn{Conn: c, idle: idle}, nil
	}
	t.TLSHandshakeTimeout = 30 * time.Second
	t.ResponseHeaderTimeout = o.idle
	if o.request <= 0 {
		return t
	}
	return requestTimeout{next: t, d: o.request}
}

// idleConn pushes its deadline forward on every read and write: only a connection that stalls times out.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(p)
}

// requestTimeout bounds a whole request, until its response body is closed.
type requestTimeout struct {
	next http.RoundTripper
	d    time.Duration
}

func (r requestTimeout) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), r.d)
	resp, err := r.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("%s %s: no answer within %v: %w", req.Method, req.URL.Redacted(), r.d, err)
		}
		return nil, err
	}
	resp.Body = cancelOnClose{ReadCloser: resp.Body, cancel: cancel, ctx: ctx,
		what: fmt.Sprintf("%s %s", req.Method, req.URL.Redacted()), d: r.d}
	return resp, nil
}

// cancelOnClose ends a request's context when its body is closed, and names the request when the body's
// reading ran out of time.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
	ctx    context.Context
	what   string
	d      time.Duration
}

func (c cancelOnClose) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if err != nil && err != io.EOF && c.ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("%s: not done within %v: %w", c.what, c.d, err)
	}
	return n, err
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
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
