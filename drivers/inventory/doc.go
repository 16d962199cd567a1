// Package inventory lists the software packages in an unpacked image root
// filesystem, offline: Debian and Ubuntu (dpkg status), Alpine (apk
// installed database), RPM (rpmdb.sqlite), Python distributions (dist-info,
// egg-info), R packages (DESCRIPTION) and conda (conda-meta). Each package
// comes with its package URL and where it was found.
//
// Read opens the root through os.Root, so no symlink in the image can make
// it read a host file. It checks TRE build guidance too (Check): the
// directories, user, environment and file modes a TRE expects.
//
// It does not unpack images (drivers/image does), store what it finds
// (drivers/sqlite does) or look anything up on the network.
package inventory
