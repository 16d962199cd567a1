package inventory

import (
	"testing"
	"testing/fstest"
)

// The package databases come from images anyone may build: no input may
// make the readers panic.
func FuzzPackageDatabases(f *testing.F) {
	f.Add([]byte("Package: bash\nStatus: install ok installed\nVersion: 5.2\n\nPackage: x\n continuation\n"))
	f.Add([]byte("P:musl\nV:1.2.4-r4\nA:x86_64\n\n"))
	f.Add([]byte("Name: numpy\nVersion: 1.26.4\n\nbody"))
	f.Add(rpmHeaderBlob(map[uint32]string{rpmTagName: "bash", rpmTagVersion: "5.1"}, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		parseRPMHeader(data)
		fsys := fstest.MapFS{
			dpkgStatus:                               {Data: data},
			apkDB:                                    {Data: data},
			"usr/lib/python3/x-1.dist-info/METADATA": {Data: data},
			"usr/lib/R/site-library/x/DESCRIPTION":   {Data: data},
			"opt/conda/conda-meta/x.json":            {Data: data},
		}
		d := distroOf(fsys)
		readDpkg(fsys, d)
		readApk(fsys, d)
		walk(t.Context(), fsys)
	})
}
