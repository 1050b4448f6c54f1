// Package sds is a client for the Bing Maps Spatial Data Services (SDS)
// Data Source Management API: download jobs and their data, deletion,
// public/private switching, data source information and the job list.
//
// The client talks JSON by default and decodes XML as well, so captured XML
// responses can be fed to the same decoders. It is deliberately tolerant of
// the quirks in the service's own documentation (field names in either case,
// the output link named by "name" or "output", nil or missing dates, empty
// entity counts), accepts what Microsoft's own client accepts from the real
// service (names with '-', ZIP and gzip deliveries, a status URL only in the
// Location header, an abort's reason only in errorDetails), and is strict
// about where the master key goes: the key is only ever sent to the
// configured host, and is removed from every text the service sends back.
// Every body read is bounded in time (an idle timeout) and every answer in
// size, depth and element count.
package sds
