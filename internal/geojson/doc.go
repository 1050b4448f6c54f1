// Package geojson converts an SDS DataSet export into GeoJSON (RFC 7946),
// the format every GIS, spatial database and map service reads, plus a
// schema document that keeps what GeoJSON cannot say: the entity type,
// each column's SDS type and the key column.
//
// The mapping, entity by entity:
//
//   - Geometry comes from the first geography (xs:anyType, WKT) column,
//     read as github.com/paulmach/orb reads it (package wkt): POINT,
//     LINESTRING, POLYGON (with holes), MULTIPOINT, MULTILINESTRING,
//     MULTIPOLYGON, GEOMETRYCOLLECTION and their EMPTY forms. Where the entity has no
//     value in that column (or the schema no such column), a Point is made
//     from its Latitude and Longitude columns; without those too, the
//     geometry is null.
//   - Coordinates stay longitude, latitude (WGS 84, as in the WKT).
//     Polygon rings are written in RFC 7946's winding: exterior
//     counter-clockwise, holes clockwise.
//   - WKT that does not parse, or that RFC 7946 cannot carry (a ring not
//     closed or shorter than four positions, a line of one position,
//     coordinates that are not finite or outside longitude ±180 and
//     latitude ±90), never drops the entity: its geometry is null and the
//     text is kept as a property under the column's name. Such entities
//     are counted as invalid, entities without any geometry as missing.
//     So is WKT whose parentheses nest more than 32 deep: SDS's geography
//     types need five at most, and it is refused before it is parsed.
//   - The key column becomes the Feature id. Every other column present in
//     the entity becomes a property, typed from the schema: xs:long a
//     number when within ±2^53 (what every JSON reader holds exactly), else
//     a string of its digits; xs:double a number (NaN and infinities, which
//     JSON lacks, as strings); xs:boolean true or false; xs:dateTime an
//     RFC 3339 string in UTC; further geography columns their WKT text. A
//     value that does not parse as its type is kept as its text. An
//     omitted value is left out of properties; an empty one is kept.
//
// Convert streams: it holds the few batches of entities being converted
// on the CPUs, bounded in bytes, never the export or the collection, so
// memory does not grow with the export. With
// WithGeoParquet it also writes the entities as GeoParquet (package
// geoparquet) from the same read, the same geometries as WKB; those rows
// wait in a temporary file until the GeoJSON is complete.
package geojson
