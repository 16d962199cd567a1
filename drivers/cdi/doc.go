// Package cdi resolves Container Device Interface names (nvidia.com/gpu=all)
// through the CDI spec files of the host with the CNCF library
// (tags.cncf.io/container-device-interface), and returns their container
// edits as core.DeviceEdits for the runtime spec. It does not write specs,
// nor apply edits to an OCI spec: drivers/runtime does that, so that device
// nodes work in the sandbox's user namespace.
package cdi
