// Package collector builds minimal root filesystems and images from the closures elfdeps resolves. Build
// runs the pipeline a Spec describes: a Planner gathers programs (placed where asked), their exact
// closures and what the run-time rules add into a Tree, read only through a rootfs.FS (a directory or an
// existing image); a Sink writes the tree as a directory, a reproducible tarball, a newc initramfs, or an
// image (OCI layout, docker-load archive, registry push). Every Entry keeps where it goes apart from where
// its bytes come from, and its structured Origins. Nothing is ever executed, but a --trace workload.
// elfdeps never imports this package.
package collector
