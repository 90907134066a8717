// Package collector builds minimal root filesystems and images from the closures elfdeps resolves: a Planner
// gathers programs, their exact closures and the small files every program reads into a Tree, and writers
// turn the Tree into a directory, a reproducible tarball, an OCI image on the empty base, a docker-load
// archive, a registry push or an initramfs. Nothing is ever executed. elfdeps never imports this package.
package collector
