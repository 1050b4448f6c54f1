package dataset

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// SDS limits on a data source, as its own tools enforce them.
const (
	MaxColumns  = 352
	MaxEntities = 200_000
	MaxNameLen  = 50 // data source, entity type and column names
)

// Type is the SDS type of a column.
type Type uint8

// The column types an export can hold, by their xs: names.
const (
	String    Type = iota + 1 // xs:string
	Long                      // xs:long
	Double                    // xs:double
	Boolean                   // xs:boolean
	DateTime                  // xs:dateTime, UTC
	Geography                 // xs:anyType: WKT, longitude first
)

var typeNames = map[Type]string{
	String: "xs:string", Long: "xs:long", Double: "xs:double",
	Boolean: "xs:boolean", DateTime: "xs:dateTime", Geography: "xs:anyType",
}

var edmNames = map[Type]string{
	String: "Edm.String", Long: "Edm.Int64", Double: "Edm.Double",
	Boolean: "Edm.Boolean", DateTime: "Edm.DateTime", Geography: "Edm.Geography",
}

// String returns the type's name in the export, such as "xs:long".
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// ParseType is the inverse of String: the type named "xs:long" and so on.
func ParseType(name string) (Type, bool) {
	for t, s := range typeNames {
		if s == name {
			return t, true
		}
	}
	return 0, false
}

// EDM returns the type's name in the SDS query API, such as "Edm.Int64".
func (t Type) EDM() string { return edmNames[t] }

// Column is one property of the entity type.
type Column struct {
	Name string
	Type Type
}

// Schema describes an export's entities.
type Schema struct {
	DataSetName string // the schema's id: the data source name
	EntityType  string
	Key         string // the key column's name
	Columns     []Column

	index map[string]int
	fold  bool // names are matched without regard to case (FoldNames)
}

// Index returns the position of the named column, or -1.
func (s *Schema) Index(name string) int {
	if s.fold {
		name = strings.ToLower(name)
	}
	if i, ok := s.index[name]; ok {
		return i
	}
	return -1
}

var (
	sdsName    = regexp.MustCompile("^[-a-zA-Z0-9~`!$^_={}]+$")
	columnName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// parseSchema reads the export's start up to the end of its xs:schema,
// closed with the root's end tag.
func parseSchema(doc []byte, fold bool) (*Schema, error) {
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	s := &Schema{index: map[string]int{}, fold: fold}
	var (
		path       []string // local names of the open elements
		choice     int      // depth of xs:choice, 0 outside
		entity     int      // depth of the entity type's xs:element
		unique     int      // depth of xs:unique
		entities   int      // xs:element children of xs:choice
		inSequence bool
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("schema is not well-formed XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			depth := len(path)
			switch {
			case depth == 2:
				s.DataSetName = attr(t, "id")
			case t.Name.Local == "choice" && choice == 0:
				choice = depth
			case t.Name.Local == "element" && choice > 0 && depth == choice+1:
				if entities++; entities == 1 {
					s.EntityType = attr(t, "name")
					entity = depth
				}
			case t.Name.Local == "sequence" && entity > 0 && depth > entity:
				inSequence = true
			case t.Name.Local == "element" && inSequence && entities == 1:
				if err := s.addColumn(attr(t, "name"), attr(t, "type")); err != nil {
					return nil, err
				}
			case t.Name.Local == "unique" && choice == 0 && unique == 0:
				unique = depth
			case t.Name.Local == "field" && unique > 0:
				s.Key = strings.TrimSpace(attr(t, "xpath"))
			}
		case xml.EndElement:
			depth := len(path)
			switch depth {
			case choice:
				choice = 0
			case entity:
				entity, inSequence = 0, false
			case unique:
				unique = 0
			}
			path = path[:depth-1]
		}
	}
	return s, s.check(entities)
}

func (s *Schema) addColumn(name, typ string) error {
	if !columnName.MatchString(name) || len(name) > MaxNameLen {
		return fmt.Errorf("schema: column name %q is not an SDS column name", clip(name))
	}
	if s.Index(name) >= 0 {
		return fmt.Errorf("schema: column %q appears twice", name)
	}
	if len(s.Columns) == MaxColumns {
		return fmt.Errorf("schema: more than %d columns", MaxColumns)
	}
	var t Type
	local := typ
	if i := strings.LastIndexByte(typ, ':'); i >= 0 {
		local = typ[i+1:]
	}
	switch local {
	case "string":
		t = String
	case "long":
		t = Long
	case "double":
		t = Double
	case "boolean":
		t = Boolean
	case "dateTime":
		t = DateTime
	case "anyType":
		t = Geography
	default:
		return fmt.Errorf("schema: column %q has type %q (%s), which SDS does not use", name, clip(local), clip(typ))
	}
	key := name
	if s.fold {
		key = strings.ToLower(name)
	}
	s.index[key] = len(s.Columns)
	s.Columns = append(s.Columns, Column{Name: name, Type: t})
	return nil
}

func (s *Schema) check(entityTypes int) error {
	switch {
	case entityTypes == 0:
		return errors.New("schema: no entity type (xs:element in xs:choice)")
	case entityTypes > 1:
		return fmt.Errorf("schema: %d entity types; an SDS data source has one", entityTypes)
	case !sdsName.MatchString(s.DataSetName) || len(s.DataSetName) > MaxNameLen:
		return fmt.Errorf("schema: id %q is not an SDS data source name", clip(s.DataSetName))
	case !sdsName.MatchString(s.EntityType) || len(s.EntityType) > MaxNameLen:
		return fmt.Errorf("schema: entity type %q is not an SDS entity type name", clip(s.EntityType))
	case len(s.Columns) == 0:
		return fmt.Errorf("schema: entity type %s has no columns", s.EntityType)
	case s.Key != "" && s.Index(s.Key) < 0:
		return fmt.Errorf("schema: key %q is not a column of %s", clip(s.Key), s.EntityType)
	}
	return nil
}

func attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// clip makes text from an export safe and short for an error message.
func clip(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
