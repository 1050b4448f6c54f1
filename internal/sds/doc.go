// Package sds is a client for the Bing Maps Spatial Data Services (SDS)
// Data Source Management API: download jobs and their data, deletion,
// public/private switching, data source information and the job list.
//
// The client talks JSON by default and decodes XML as well, so captured XML
// responses can be fed to the same decoders. It is deliberately tolerant of
// the quirks in the service's own documentation (field names in either case,
// the output link named by "name" or "output", nil or missing dates, empty
// entity counts) and strict about where the master key goes: the key is only
// ever sent to the configured host, and never appears in an error string.
package sds
