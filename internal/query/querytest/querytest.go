// Package querytest holds data sources for tests of the Query API: the
// entities the SDS docs' examples answer with, as DataSet exports. Only
// tests import it.
package querytest

import (
	"strings"

	"github.com/sdsops/sdsops/internal/dataset/datasettest"
)

// Docs' identifiers.
const (
	AccessID   = "20181f26d9e94c81acdf9496133d4f23"
	Name       = "FourthCoffeeSample"
	EntityType = "FourthCoffeeShops"

	GeomAccessID   = "20181f26d9e94c239ddf9496133d4f23"
	GeomName       = "SampleDataSource"
	GeomEntityType = "SampleEntityType"
)

var coffeeColumns = []datasettest.Column{
	{Name: "EntityID", Type: "string", Required: true}, {Name: "Latitude", Type: "double"}, {Name: "Longitude", Type: "double"},
	{Name: "AddressLine", Type: "string"}, {Name: "PrimaryCity", Type: "string"}, {Name: "Subdivision", Type: "string"},
	{Name: "PostalCode", Type: "string"}, {Name: "Phone", Type: "string"}, {Name: "SecondaryCity", Type: "string"},
	{Name: "CountryRegion", Type: "string"}, {Name: "Name", Type: "string"}, {Name: "DisplayName", Type: "string"},
	{Name: "Manager", Type: "string"}, {Name: "StoreOpen", Type: "string"}, {Name: "StoreType", Type: "string"},
	{Name: "SeatingCapacity", Type: "long"}, {Name: "Open", Type: "long"}, {Name: "Close", Type: "long"},
	{Name: "IsWiFiHotSpot", Type: "boolean"}, {Name: "IsWheelchairAccessible", Type: "boolean"},
	{Name: "AcceptsOnlineOrders", Type: "boolean"}, {Name: "AcceptsCoffeeCards", Type: "boolean"},
	{Name: "CreatedDate", Type: "dateTime", UTC: true}, {Name: "LastUpdatedDate", Type: "dateTime", UTC: true},
}

// store is one entity: its ID, point, and the fields that differ.
type store struct {
	id, lat, lon string
	fields       string // XML elements
}

// The docs' examples' entities with their coordinates where the docs print
// them; the others are placed where the examples need them (the Clearwater
// stores within 2 km of the query point, in the distance order shown).
var coffeeStores = []store{
	{"-22067", "57.003766", "9.874434", `<AddressLine>Løven</AddressLine><PrimaryCity>Aalborg</PrimaryCity><Subdivision>Nordjyllands Amt</Subdivision><PostalCode>9200</PostalCode><Phone>0800-XXXXX</Phone><SecondaryCity /><CountryRegion>Danmark</CountryRegion><Name>Fourth Coffee Store #22067</Name><DisplayName>Fourth Coffee Store #22067, Aalborg, Nordjyllands Amt, Danmark</DisplayName><Manager>Alan Steiner</Manager><StoreOpen>Y</StoreOpen><StoreType>Drive-Thru</StoreType><Open>700</Open><Close>1800</Close><IsWiFiHotSpot>false</IsWiFiHotSpot><IsWheelchairAccessible>false</IsWheelchairAccessible><AcceptsOnlineOrders>false</AcceptsOnlineOrders><AcceptsCoffeeCards>true</AcceptsCoffeeCards><CreatedDate>2010-11-03T00:00:00Z</CreatedDate><LastUpdatedDate>2010-11-03T23:31:36Z</LastUpdatedDate>`},
	{"-7884", "40.780329", "-74.237863", nj("7884", "Newark", false)},
	{"-7891", "40.781604", "-74.181775", `<AddressLine>148 Franklin St</AddressLine><PrimaryCity>Belleville</PrimaryCity><PostalCode>07109</PostalCode>` + storeTail("7891", "Belleville", false)},
	{"-7920", "40.787240", "-74.391041", nj("7920", "Livingston", false)},
	{"-8051", "40.820685", "-74.295683", nj("8051", "Livingston", false)},
	{"-8174", "40.849513", "-74.292831", nj("8174", "Roseland", false)},
	{"-8181", "40.851404", "-74.293720", nj("8181", "Roseland", false)},
	{"-8080", "40.827191", "-74.358151", nj("8080", "East Hanover", true)},
	{"-8077", "40.826413", "-74.360059", nj("8077", "East Hanover", true)},
	{"-8089", "40.828150", "-74.364028", nj("8089", "East Hanover", true)},
	{"-8090", "40.829150", "-74.368028", nj("8090", "East Hanover", true)},
	{"-715", "27.900000", "-82.670776", fl("715", "Largo", "Coffee Shop", true, false)},
	{"-661", "27.894007", "-82.670776", fl("661", "Clearwater", "Coffee Shop", false, true)},
	{"-736", "27.902000", "-82.670776", fl("736", "Largo", "Coffee Shop", false, false)},
	{"-685", "27.904000", "-82.670776", fl("685", "Largo", "Coffee Shop", false, false)},
	{"-700", "27.906000", "-82.670776", fl("700", "Largo", "Coffee Shop", false, false)},
	{"-660", "27.893759", "-82.667436", fl("660", "Clearwater", "Drive-Thru", false, true)},
	{"-666", "27.899343", "-82.715604", fl("666", "Clearwater", "Coffee Shop", false, true)},
	{"-669", "27.916173", "-82.733002", fl("669", "Clearwater", "Coffee Shop", false, false)},
	{"-710", "27.960745", "-82.719151", fl("710", "Clearwater", "Coffee Shop", false, false)},
	{"-1001", "47.609700", "-122.333100", wa("1001", "Seattle", "98101")},
	{"-1002", "47.639600", "-122.128300", wa("1002", "Redmond", "98052")},
}

// wa is a store of the docs' prose examples around Seattle.
func wa(n, city, zip string) string {
	return `<PrimaryCity>` + city + `</PrimaryCity><Subdivision>WA</Subdivision><PostalCode>` + zip + `</PostalCode><CountryRegion>United States</CountryRegion><DisplayName>Fourth Coffee Store #` + n + `, ` + city +
		`, WA, United States</DisplayName><StoreType>Coffee Shop</StoreType><IsWiFiHotSpot>false</IsWiFiHotSpot><LastUpdatedDate>2010-11-03T00:00:00Z</LastUpdatedDate>`
}

func nj(n, city string, wifi bool) string {
	return `<AddressLine>` + n + ` Main St</AddressLine><PrimaryCity>` + city + `</PrimaryCity><PostalCode>07000</PostalCode>` + storeTail(n, city, wifi)
}

func storeTail(n, city string, wifi bool) string {
	return `<Subdivision>NJ</Subdivision><CountryRegion>United States</CountryRegion><DisplayName>Fourth Coffee Store #` + n + `, ` + city +
		`, NJ, United States</DisplayName><StoreType>Coffee Shop</StoreType><SeatingCapacity>20</SeatingCapacity><IsWiFiHotSpot>` + b(wifi) +
		`</IsWiFiHotSpot><IsWheelchairAccessible>true</IsWheelchairAccessible><LastUpdatedDate>2010-11-03T23:31:37Z</LastUpdatedDate>`
}

func fl(n, city, typ string, wifi, wheelchair bool) string {
	return `<PrimaryCity>` + city + `</PrimaryCity><Subdivision>FL</Subdivision><CountryRegion>United States</CountryRegion><DisplayName>Fourth Coffee Store #` + n + `, ` + city +
		`, FL, United States</DisplayName><StoreType>` + typ + `</StoreType><Open>600</Open><IsWiFiHotSpot>` + b(wifi) +
		`</IsWiFiHotSpot><IsWheelchairAccessible>` + b(wheelchair) + `</IsWheelchairAccessible><LastUpdatedDate>2010-11-03T00:00:00Z</LastUpdatedDate>`
}

func b(v bool) string {
	if v {
		return "true"
	}
	return "false"
}

// CoffeeShops is the FourthCoffeeSample export.
func CoffeeShops() string {
	s := datasettest.Schema{Root: "FourthCoffeeSample", Name: Name, EntityType: EntityType, Key: "EntityID", Columns: coffeeColumns}
	var sb strings.Builder
	sb.WriteString(s.Header())
	for _, st := range coffeeStores {
		sb.WriteString("  <" + EntityType + "><EntityID>" + st.id + "</EntityID><Latitude>" + st.lat + "</Latitude><Longitude>" + st.lon + "</Longitude>" + st.fields + "</" + EntityType + ">\n")
	}
	sb.WriteString(s.Footer())
	return sb.String()
}

// Geoms is the SampleDataSource export of the intersects examples: a line
// and a polygon crossing the example's polygon, and shapes that do not.
func Geoms() string {
	s := datasettest.Schema{Root: "SampleDataSource", Name: GeomName, EntityType: GeomEntityType, Key: "EntityID", Columns: []datasettest.Column{
		{Name: "EntityID", Type: "string", Required: true}, {Name: "Latitude", Type: "double"}, {Name: "Longitude", Type: "double"},
		{Name: "Name", Type: "string"}, {Name: "Geom", Type: "anyType"},
	}}
	var sb strings.Builder
	sb.WriteString(s.Header())
	for _, e := range [][4]string{
		{"1001199368", "40.9", "-117.01828", "LINESTRING (-117.01828 41.00016, -117.01828 40.8)"},
		{"1001503020", "41.697", "-120.88", "POLYGON ((-120.87118 41.68966, -120.87053 41.7041, -120.89012 41.70441, -120.89027 41.68988, -120.87118 41.68966))"},
		{"1002000000", "45.5", "-100.5", "POLYGON ((-101 45, -100 45, -100 46, -101 46, -101 45))"},
		{"1003000000", "41.5", "-115", ""},
		{"1004000000", "41.5", "-111.5", "POINT (-111.5 41.5)"},
	} {
		sb.WriteString("  <" + GeomEntityType + "><EntityID>" + e[0] + "</EntityID><Latitude>" + e[1] + "</Latitude><Longitude>" + e[2] + "</Longitude><Name>Shape " + e[0] + "</Name>")
		if e[3] != "" {
			sb.WriteString("<Geom>" + e[3] + "</Geom>")
		}
		sb.WriteString("</" + GeomEntityType + ">\n")
	}
	sb.WriteString(s.Footer())
	return sb.String()
}
