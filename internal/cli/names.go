package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/sdsops/sdsops/internal/task"
)

// dsID names a data source as the API does: accessId and name.
type dsID struct{ AccessID, Name string }

func (id dsID) String() string { return id.AccessID + "/" + id.Name }

// inventory is GET /datasources.
func (a *app) inventory(ctx context.Context) (*task.Inventory, error) {
	c, err := a.client(ctx)
	if err != nil {
		return nil, err
	}
	var inv task.Inventory
	if err := c.do(ctx, "GET", "/datasources", nil, &inv); err != nil {
		return nil, fmt.Errorf("reading the inventory: %w", err)
	}
	return &inv, nil
}

// resolve turns NAME or ACCESSID/NAME into the data source the API
// knows, spelled as the inventory spells it. A bare name must be unique
// in the inventory; accessId/name is taken as given when the inventory
// does not hold it (a data source sdsops has not seen yet).
func (a *app) resolve(ctx context.Context, arg string) (dsID, *task.InventoryEntry, error) {
	accessID, name, qualified := strings.Cut(arg, "/")
	if !qualified {
		accessID, name = "", arg
	}
	if name == "" || (qualified && accessID == "") || strings.Contains(name, "/") {
		return dsID{}, nil, usageErrorf("data source %q: want NAME or ACCESSID/NAME", arg)
	}
	inv, err := a.inventory(ctx)
	if err != nil {
		return dsID{}, nil, err
	}
	var found []task.InventoryEntry
	for _, e := range inv.DataSources {
		if strings.EqualFold(e.Name, name) && (!qualified || strings.EqualFold(e.AccessID, accessID)) {
			found = append(found, e)
		}
	}
	switch {
	case len(found) == 1:
		return dsID{found[0].AccessID, found[0].Name}, &found[0], nil
	case len(found) > 1:
		var ids []string
		for _, e := range found {
			ids = append(ids, e.AccessID+"/"+e.Name)
		}
		return dsID{}, nil, usageErrorf("%q names %d data sources (%s): give ACCESSID/NAME", name, len(found), strings.Join(ids, ", "))
	case qualified:
		return dsID{accessID, name}, nil, nil
	}
	return dsID{}, nil, usageErrorf("unknown data source %q: not in the inventory (sdsops status lists them; give ACCESSID/NAME for one sdsops has not seen yet)", name)
}
