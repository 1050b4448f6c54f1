package geoparquet

import (
	"strings"

	"github.com/sdsops/sdsops/internal/dataset"
)

// AthenaTable returns an Athena CREATE EXTERNAL TABLE statement for the
// GeoParquet files of entities of s (primary geometry from column geo, -1
// when derived), named table, reading the files under location (an S3
// folder URL ending in '/'). Geometry columns are binary, for
// ST_GeomFromBinary.
func AthenaTable(s *dataset.Schema, geo int, table, location string) string {
	cols, _ := layout(s, geo)
	var b strings.Builder
	b.WriteString("CREATE EXTERNAL TABLE `" + athenaName(table) + "` (\n")
	for i, c := range cols {
		b.WriteString("  `" + athenaName(c.name) + "` " + athenaType(c.kind))
		if i < len(cols)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(")\nSTORED AS PARQUET\nLOCATION '" + strings.ReplaceAll(location, "'", "''") + "'")
	return b.String()
}

// Athena (Hive DDL) names are lower case; a backtick is doubled.
func athenaName(s string) string { return strings.ReplaceAll(strings.ToLower(s), "`", "``") }

func athenaType(k kind) string {
	switch k {
	case kLong:
		return "bigint"
	case kDouble:
		return "double"
	case kBool:
		return "boolean"
	case kTime:
		return "timestamp"
	case kWKB:
		return "binary"
	case kBBox:
		return "struct<xmin:double,ymin:double,xmax:double,ymax:double>"
	}
	return "string"
}
