package dataset_test

import (
	"fmt"
	"io"
	"os"

	"github.com/sdsops/sdsops/internal/dataset"
)

// A Verifier sits beside the copy of an export, as an io.Writer.
func ExampleVerifier() {
	f, _ := os.Open("testdata/get-downloaded-data-2.xml")
	defer f.Close()
	v := dataset.NewVerifier("MyDataSourceName")
	if _, err := io.Copy(io.Discard, io.TeeReader(f, v)); err != nil {
		fmt.Println(err)
		return
	}
	if err := v.Close(); err != nil {
		fmt.Println(err)
		return
	}
	s := v.Summary()
	fmt.Println(s.Schema.EntityType, s.Schema.Key, s.Entities)
	// Output: MyDataSourceEntityType EntityID 1
}

func ExampleReader() {
	f, _ := os.Open("testdata/load-data-source-data-schema-and-sample-input-3.xml")
	defer f.Close()
	rd := dataset.NewReader(f, "FourthCoffeeSample")
	s, err := rd.Schema()
	if err != nil {
		fmt.Println(err)
		return
	}
	layout := s.Index("StoreLayout")
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		id := rec.Value(s.Index(s.Key)).Text()
		open, _ := rec.Value(s.Index("Open")).Long()
		fmt.Println(id, open, rec.Value(layout).Present, s.Columns[layout].Type)
	}
	// Output:
	// -22067 700 true xs:anyType
	// -22066 1000 false xs:anyType
}
