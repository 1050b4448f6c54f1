// Package dataset reads the SDS DataSet XML export: the format in which
// Spatial Data Services hands out a data source and takes one back on a
// load.
//
// An export is one root element, whose name is arbitrary, holding first an
// inline xs:schema and then one element per entity. The schema's id is the
// data source name; the xs:element inside its xs:choice names the entity
// type; the name/type pairs of that element's xs:sequence are the columns;
// the xpath of the last xs:field of its xs:unique is the key column. Column
// types are xs:string, xs:long, xs:double, xs:boolean, xs:dateTime and
// xs:anyType, which holds a geography as WKT (longitude first). A value
// that an entity does not have is an omitted element.
//
// There is one reader, a byte scanner fed as a stream; it never holds more
// than one entity. It runs in two modes:
//
//   - Verifier (an io.WriteCloser) checks and counts: the export must be
//     well-formed XML to its end, UTF-8 with or without a byte order mark,
//     with no DOCTYPE, no undefined entity references and no bare '&';
//     its schema must name the expected data source and stay within the
//     SDS limits (MaxColumns, MaxEntities, name rules); after the schema
//     only entity elements may follow.
//   - Reader (over an io.Reader) does the same checks and also yields each
//     entity as a Record of typed values, telling omitted values from empty
//     ones. Its options FoldNames and RecordErrors read a load as SDS
//     does: field names in any case, and a stray field a fault of its
//     entity rather than of the document.
//
// The schema itself, a few kilobytes, is parsed with encoding/xml; the
// entities, which are the bulk, go through the scanner alone because
// encoding/xml reads only about 30 MB/s.
package dataset
