package queryapi

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// KeyConfig is the operator's list of keys, as SHA-256 hashes in hex (a
// secret holds it: `printf %s "$KEY" | sha256sum`), never the keys:
//
//	{"accountKeyHashes": ["…"], "masterKeyHashes": ["…"],
//	 "queryKeyHashes": {"{accessId}/{dataSourceName}": "…"}}
type KeyConfig struct {
	Account []string          `json:"accountKeyHashes"`
	Master  []string          `json:"masterKeyHashes"`
	Query   map[string]string `json:"queryKeyHashes"`
}

// Keys are the decoded hashes: the Handler's AccountKeys and MasterKeys,
// and the query keys by lower-case "accessId/name".
type Keys struct {
	Account, Master [][32]byte
	Query           map[string][32]byte
}

// ParseKeys reads a KeyConfig document. An entry that is not a SHA-256
// in hex is an error that names where it is, not what it holds.
func ParseKeys(doc []byte) (Keys, error) {
	var kc KeyConfig
	if err := json.Unmarshal(doc, &kc); err != nil {
		return Keys{}, fmt.Errorf("query keys: not a JSON key list: %w", err)
	}
	var k Keys
	var err error
	if k.Account, err = hashes("accountKeyHashes", kc.Account); err != nil {
		return Keys{}, err
	}
	if k.Master, err = hashes("masterKeyHashes", kc.Master); err != nil {
		return Keys{}, err
	}
	k.Query = map[string][32]byte{}
	for ds, h := range kc.Query {
		one, err := hashes("queryKeyHashes["+ds+"]", []string{h})
		if err != nil {
			return Keys{}, err
		}
		k.Query[strings.ToLower(ds)] = one[0]
	}
	if len(k.Account)+len(k.Master)+len(k.Query) == 0 {
		return Keys{}, fmt.Errorf("query keys: the list holds no key hash: no request could be answered")
	}
	return k, nil
}

func hashes(field string, hexes []string) ([][32]byte, error) {
	out := make([][32]byte, len(hexes))
	for i, h := range hexes {
		b, err := hex.DecodeString(strings.TrimSpace(h))
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("query keys: %s entry %d is not a SHA-256 in hex (64 hex digits)", field, i)
		}
		copy(out[i][:], b)
	}
	return out, nil
}
