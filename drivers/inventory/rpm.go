package inventory

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	_ "modernc.org/sqlite" // the rpmdb.sqlite reader

	"github.com/runprov/runprov/core"
)

// rpmDBs are where rpm 4.16 and later keep their sqlite database.
var rpmDBs = []string{"var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"}

// readRPM lists the packages of an rpmdb.sqlite. The database is copied out
// of the image first: sqlite opens files by path, and a path into the
// image could be a symlink to the host.
func readRPM(fsys fs.FS, d distro) ([]core.Package, error) {
	for _, name := range rpmDBs {
		data, err := readSmall(fsys, name)
		if err != nil {
			if missing(err) {
				continue
			}
			return nil, err
		}
		return rpmPackages(data, abs(name), d)
	}
	return nil, nil
}

func rpmPackages(data []byte, location string, d distro) ([]core.Package, error) {
	f, err := os.CreateTemp("", "runprov-rpmdb-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+f.Name()+"?mode=ro&immutable=1")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Query(`SELECT blob FROM Packages`)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w: %v", location, core.ErrInvalid, err)
	}
	defer rows.Close()
	ns := d.id
	if ns == "" {
		ns = "redhat"
	}
	var out []core.Package
	for rows.Next() {
		var blob []byte
		if err := rows.Scan(&blob); err != nil {
			return nil, err
		}
		h, err := parseRPMHeader(blob)
		if err != nil || h.name == "" {
			continue // one damaged header does not hide the others
		}
		version := h.version + "-" + h.release
		p := core.Package{Ecosystem: core.EcosystemRPM, Name: h.name, Version: version, Arch: h.arch, License: h.license, Location: location}
		if h.epoch != "" {
			p.Version = h.epoch + ":" + version
		}
		p.PURL = purl("rpm", ns, h.name, version, "arch", h.arch, "epoch", h.epoch, "distro", d.qualifier())
		out = append(out, p)
	}
	return out, rows.Err()
}

// rpmHeader is what runprov takes from an RPM header.
type rpmHeader struct{ name, version, release, epoch, arch, license string }

// RPM header tags and types (rpmtag.h).
const (
	rpmTagName    = 1000
	rpmTagVersion = 1001
	rpmTagRelease = 1002
	rpmTagEpoch   = 1003
	rpmTagLicense = 1014
	rpmTagArch    = 1022

	rpmTypeInt32    = 4
	rpmTypeString   = 6
	rpmTypeI18NText = 9
)

// parseRPMHeader reads an RPM header blob as rpmdb stores it: the entry
// count and data length (big endian), 16-byte entries (tag, type, offset,
// count), then the data.
func parseRPMHeader(b []byte) (rpmHeader, error) {
	var h rpmHeader
	if len(b) < 8 {
		return h, core.ErrInvalid
	}
	il, dl := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
	if il > 1<<16 || uint64(8)+uint64(il)*16+uint64(dl) > uint64(len(b)) {
		return h, core.ErrInvalid
	}
	data := b[8+il*16 : 8+il*16+dl]
	for i := range il {
		e := b[8+i*16:]
		tag, typ, off := binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:]), binary.BigEndian.Uint32(e[8:])
		if off >= uint32(len(data)) {
			continue
		}
		var v string
		switch typ {
		case rpmTypeString, rpmTypeI18NText:
			s := data[off:]
			if n := bytes.IndexByte(s, 0); n >= 0 {
				v = string(s[:n])
			}
		case rpmTypeInt32:
			if off+4 <= uint32(len(data)) {
				v = strconv.FormatUint(uint64(binary.BigEndian.Uint32(data[off:])), 10)
			}
		}
		switch tag {
		case rpmTagName:
			h.name = v
		case rpmTagVersion:
			h.version = v
		case rpmTagRelease:
			h.release = v
		case rpmTagEpoch:
			h.epoch = v
		case rpmTagLicense:
			h.license = v
		case rpmTagArch:
			h.arch = v
		}
	}
	return h, nil
}
