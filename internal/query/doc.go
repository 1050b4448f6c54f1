// Package query answers the queries of the SDS Query API over an archived
// data source held in memory.
//
// A Table holds one data source: its columns, typed as the schema says,
// stored column by column, and two R-trees, one over the entities'
// Latitude/Longitude points (nearby, bbox) and one over their shapes
// (intersects: the geography property where the entity has one, its point
// otherwise). Tables are built by a Builder, which any archive format can
// feed; FromDataSet feeds it from the DataSet XML export.
//
// Parse turns the parameters of a request into a Query, refusing with an
// *Error (status 400) what SDS documents as unsupported; Table.Run answers
// it. Both are pure: the HTTP side, keys and the choice of archive belong
// to the caller.
package query
