// Package geoparquet writes an SDS data source as GeoParquet 1.1.0: one
// Parquet file, typed columns, WKB geometries described by the file's
// "geo" metadata, and a bounding-box covering column, with rows ordered
// along a Hilbert curve so that a bounding-box filter skips whole row
// groups.
//
// The mapping:
//
//   - Every column of the schema keeps its name and position, typed from
//     the schema: xs:long INT64, xs:double DOUBLE, xs:boolean BOOLEAN,
//     xs:string STRING, xs:dateTime TIMESTAMP adjusted to UTC, in
//     nanoseconds when every value of the column lies within what
//     nanoseconds since 1970 hold (1677–2262), else in microseconds. An
//     omitted value, or one that does not parse as its type, is null.
//   - The entity's geometry (the caller's: the first geography column,
//     else Latitude/Longitude) is the primary geometry column, WKB, named
//     "geometry" and standing in place of the first geography column (at
//     the end without one). Where the first geography column holds text
//     that is no geometry (the caller refused it: the geometry is null),
//     that text stays in a STRING column under the geography column's
//     name, after the geometry, as the GeoJSON keeps it as a property;
//     the column is null elsewhere. Further geography columns are
//     geometry columns under their own names, each followed by a STRING
//     column <name>_text that holds, in the same way, the text of a value
//     that is no geometry.
//   - "bbox", a struct of xmin, ymin, xmax, ymax, covers the primary
//     geometry; it is null where the geometry is null or empty.
//
// Rows cannot be ordered before all are seen, and an export may be far
// larger than the memory a conversion may use, so a Writer spills each
// encoded row to a temporary file as it comes and keeps only its offset
// and the centre of its bounding box; Finish sorts those and reads the
// rows back in curve order.
//
// The Parquet format itself is github.com/parquet-go/parquet-go's: writing
// 200,000 rows of 2 KB geometries it took less CPU and heap than arrow-go's
// pqarrow, and a Lambda binary with it is 7 MB where arrow-go makes it 32 MB
// (the functions must stay under 15 MiB).
package geoparquet
