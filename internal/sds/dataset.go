package sds

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DataSetSummary describes a downloaded export: the XML DataSet of an
// inline xs:schema followed by one element per entity.
type DataSetSummary struct {
	DataSetName string // the schema's id: the data source name
	EntityType  string // the entity element name
	Fields      []string
	Entities    int64
}

// SummarizeDataSet reads an export to its end, checking that it is a
// well-formed DataSet, and counts its entities. It streams: memory does
// not grow with the export.
func SummarizeDataSet(r io.Reader) (DataSetSummary, error) {
	var s DataSetSummary
	d := xml.NewDecoder(r)
	d.Strict = true
	depth := 0
	inSchema := false
	var choiceDepth int
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s, fmt.Errorf("export is not well-formed XML after %d entities: %w", s.Entities, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1:
				if s.DataSetName != "" || s.EntityType != "" {
					return s, errors.New("export has more than one root element")
				}
			case depth == 2 && t.Name.Local == "schema":
				inSchema = true
				s.DataSetName = attr(t, "id")
			case inSchema && t.Name.Local == "choice":
				choiceDepth = depth
			case inSchema && t.Name.Local == "element" && choiceDepth > 0 && depth == choiceDepth+1:
				if s.EntityType == "" {
					s.EntityType = attr(t, "name")
				}
			case inSchema && t.Name.Local == "element" && choiceDepth > 0 && depth > choiceDepth+1:
				if name := attr(t, "name"); name != "" {
					s.Fields = append(s.Fields, name)
				}
			case depth == 2 && !inSchema:
				if s.EntityType == "" {
					return s, errors.New("export has entities before its schema")
				}
				if t.Name.Local != s.EntityType {
					return s, fmt.Errorf("export has a <%s> element where <%s> entities were expected", truncate(t.Name.Local, 40), s.EntityType)
				}
				s.Entities++
			}
		case xml.EndElement:
			if inSchema && depth == 2 {
				inSchema = false
			}
			if depth == choiceDepth {
				choiceDepth = 0
			}
			depth--
		}
	}
	if depth != 0 {
		return s, errors.New("export ends inside an element")
	}
	if s.EntityType == "" {
		return s, errors.New("export has no xs:schema describing its entity type")
	}
	return s, nil
}

func attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if strings.EqualFold(a.Name.Local, local) {
			return a.Value
		}
	}
	return ""
}
