package core

// GPUInfo is what a host's GPU drivers say about themselves, read from
// /proc and /sys without vendor tools. Part of SystemKernel; nil on a host
// without NVIDIA or AMD GPU drivers, so those hosts' snapshots are as before.
type GPUInfo struct {
	// NVIDIADriver is the kernel module's version from
	// /proc/driver/nvidia/version, e.g. "550.54.15".
	NVIDIADriver string `json:"nvidia_driver,omitempty"`
	// AMDGPUVersion is /sys/module/amdgpu/version (the out-of-tree
	// ROCm driver has one; the in-tree driver does not).
	AMDGPUVersion string      `json:"amdgpu_version,omitempty"`
	Devices       []GPUDevice `json:"devices,omitempty"` // sorted by vendor, bus id
	// DevNodes are the GPU device nodes present: /dev/nvidia*, /dev/kfd; sorted.
	DevNodes []string `json:"dev_nodes,omitempty"`
}

// GPUDevice is one GPU.
type GPUDevice struct {
	Vendor string `json:"vendor"` // "nvidia" or "amd"
	Model  string `json:"model"`  // NVIDIA: Model; AMD: product_name, else "PCI 1002:DEVICE"
	BusID  string `json:"bus_id"` // PCI address, e.g. "0000:3b:00.0"
}
