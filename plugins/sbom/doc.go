// Package sbom is what is inside an image: it takes the inventory of an
// image's unpacked root filesystem once per image config (Service.Inventory),
// writes it as a CycloneDX 1.6 or SPDX 2.3 JSON document with the maintained
// libraries of those formats, compares the packages of two images for
// runprov diff, and checks an image against TRE build guidance (Check).
//
// It reads nothing itself: the image store, the package reader and the
// middleware come in through the small interfaces it declares.
package sbom
