// Package wkt turns the WKT text of an SDS geography value into its
// GeoJSON (RFC 7946) geometry and its WKB, with the geometry's type and
// bounding box, in one pass over the text.
//
// What is accepted, and what each value becomes, is defined by
// github.com/paulmach/orb's WKT decoder (with the forms it misses that SDS
// writes: runs of whitespace, bare MULTIPOINT positions, POINT EMPTY) and
// by what RFC 7946 can carry. A Converter reads the forms SDS writes
// itself, without building orb geometries or allocating per text; any
// other text goes through orb. A fuzz test holds the two to the same
// results.
package wkt
