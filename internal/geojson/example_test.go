package geojson_test

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/sdsops/sdsops/internal/geojson"
)

func ExampleConvert() {
	f, _ := os.Open("testdata/load-data-source-data-schema-and-sample-input-3.xml")
	defer f.Close()
	var features, schema bytes.Buffer
	st, err := geojson.Convert(context.Background(), f, "FourthCoffeeSample", &features, &schema)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(st.Features, st.Geometries, st.Invalid, st.Missing, st.GeoJSON.Bytes == int64(features.Len()))
	// Output: 2 map[Point:1 Polygon:1] 0 0 true
}
