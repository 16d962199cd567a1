// Package image is the image driver, on github.com/google/go-containerregistry:
// a content-addressed store of OCI images at STORE/images (an OCI image
// layout) whose rows live in the middleware (Records), fed from
// OCI layout directories, OCI archives, docker archives and registries, with
// every blob verified against its digest while it is copied; the approval
// policy (require-approval); and safe unpacking of image layers into
// STORE/rootfs/<manifest hex>, resolving every path through file descriptors
// so that no layer entry can write outside the rootfs.
//
// It does not run containers (drivers/runtime does), does not build images,
// and never changes the owner of a file: a rootfs belongs to the user who
// runs runprov.
package image
