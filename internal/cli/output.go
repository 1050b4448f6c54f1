package cli

import (
	"encoding/json"
	"io"
)

// writeJSON writes v indented, for scripts (and people reading them).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
