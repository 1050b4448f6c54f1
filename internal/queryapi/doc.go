// Package queryapi serves the SDS Query API over HTTP from data sources
// held in memory (package query): the same paths as
// spatial.virtualearth.net, so an application switches by changing its
// host, and the same answers — Atom or OData JSON, JSONP, SDS's error
// envelope and its rules for query keys.
package queryapi
