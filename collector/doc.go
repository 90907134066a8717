// Package collector builds minimal root filesystems and images from the closures elfdeps resolves: a
// directory, a reproducible tarball, an OCI image on the empty base, a docker-load archive, a registry push or
// an initramfs. It arrives with the build work; elfdeps never imports it.
package collector
