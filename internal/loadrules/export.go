package loadrules

import (
	"fmt"
	"hash/maphash"

	"github.com/sdsops/sdsops/internal/dataset"
)

// maxReasons caps the distinct reasons an ExportCheck keeps: a manifest
// stays small whatever the export holds.
const maxReasons = 10

// ExportCheck checks, entity by entity as an export is read, whether a load
// of it would be accepted. Its reasons carry no entity data: rules,
// property names, counts and entity numbers only, so they can be stored and
// shown. Memory is one hash per entity (duplicate entity IDs) and the
// reasons.
type ExportCheck struct {
	schema    *Schema
	schemaErr error
	seed      maphash.Seed
	keys      map[uint64]struct{}
	entities  int64
	reasons   []reason
	others    int64 // faults beyond maxReasons distinct reasons
}

type reason struct {
	rule         string
	first, count int64
}

// NewExportCheck returns a check of one export of about entities entities
// (a hint that saves growing the set of keys; 0 when unknown).
func NewExportCheck(entities int64) *ExportCheck {
	return &ExportCheck{seed: maphash.MakeSeed(), keys: make(map[uint64]struct{}, min(max(entities, 0), MaxEntities))}
}

// Schema checks the export's schema; root is the document's root element.
// Entities are checked only against a schema that passed.
func (c *ExportCheck) Schema(ds *dataset.Schema, root string) {
	c.schema, c.schemaErr = CheckSchema(ds, root)
}

// Entity checks the next entity of the export, whose root element is root.
func (c *ExportCheck) Entity(rec *dataset.Record, root string) {
	c.entities++
	if c.schemaErr == nil && c.schema == nil {
		c.Schema(rec.Schema(), root)
	}
	if c.schema == nil {
		return
	}
	if f := c.schema.CheckEntity(rec); f != nil {
		c.add(f.Rule)
		return
	}
	// A 64-bit hash per key: 200,000 keys collide with odds near 10^-9,
	// against megabytes for the keys themselves.
	h := maphash.Bytes(c.seed, rec.Value(c.schema.Key).Raw)
	if _, dup := c.keys[h]; dup {
		c.add("the entity ID is used by an earlier entity")
		return
	}
	c.keys[h] = struct{}{}
}

func (c *ExportCheck) add(rule string) {
	for i := range c.reasons {
		if c.reasons[i].rule == rule {
			c.reasons[i].count++
			return
		}
	}
	if len(c.reasons) == maxReasons {
		c.others++
		return
	}
	c.reasons = append(c.reasons, reason{rule: rule, first: c.entities, count: 1})
}

// Problems returns, once the whole export (size bytes, entities entities)
// has been read, why a load of it would be refused: nil when it would be
// accepted. schema is nil when the export had none.
func (c *ExportCheck) Problems(schema *dataset.Schema, root string, size, entities int64) []string {
	var p []string
	if c.schema == nil && c.schemaErr == nil && schema != nil {
		c.Schema(schema, root) // an export without entities
	}
	if c.schemaErr != nil {
		p = append(p, "schema: "+c.schemaErr.Error())
	}
	if size > MaxBytes {
		p = append(p, fmt.Sprintf("size: %d bytes, the load limit is %d", size, MaxBytes))
	}
	if entities > MaxEntities {
		p = append(p, fmt.Sprintf("entity count: %d entities, the load limit is %d", entities, MaxEntities))
	}
	for _, r := range c.reasons {
		if r.count == 1 {
			p = append(p, fmt.Sprintf("entity %d: %s", r.first, r.rule))
		} else {
			p = append(p, fmt.Sprintf("%d entities, the first entity %d: %s", r.count, r.first, r.rule))
		}
	}
	if c.others > 0 {
		p = append(p, fmt.Sprintf("%d more entities with other faults", c.others))
	}
	return p
}
