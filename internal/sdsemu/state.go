package sdsemu

import "strings"

// account is the live state of one configured account; guarded by Server.mu.
type account struct {
	name        string
	dataSources []*DataSource
}

// keyInfo tells what a key is and which account it belongs to. The key table is built once and
// never changes (a deleted data source's keys remain Bing Maps keys of the account), so it is
// read without the lock.
type keyInfo struct {
	class KeyClass
	acct  *account
}

func buildState(cfg Config) ([]*account, map[string]keyInfo) {
	accounts := make([]*account, 0, len(cfg.Accounts))
	keys := map[string]keyInfo{}
	for _, a := range cfg.Accounts {
		acct := &account{name: a.Name}
		accounts = append(accounts, acct)
		for _, k := range a.Keys {
			keys[k] = keyInfo{KeyAccount, acct}
		}
		for _, d := range a.DataSources {
			d := d.clone()
			acct.dataSources = append(acct.dataSources, &d)
			keys[d.MasterKey] = keyInfo{KeyMaster, acct}
			keys[d.QueryKey] = keyInfo{KeyQuery, acct}
		}
	}
	return accounts, keys
}

// classify reports the class of a presented key; it needs no lock.
func (s *Server) classify(key string) KeyClass {
	if key == "" {
		return KeyNone
	}
	if ki, ok := s.keys[key]; ok {
		return ki.class
	}
	return KeyUnknown
}

// findDataSourceLocked looks a data source up by access ID and name, both case-insensitive.
func (s *Server) findDataSourceLocked(accessID, name string) (*account, *DataSource) {
	for _, a := range s.accounts {
		for _, d := range a.dataSources {
			if strings.EqualFold(d.AccessID, accessID) && strings.EqualFold(d.Name, name) {
				return a, d
			}
		}
	}
	return nil, nil
}

func (a *account) remove(d *DataSource) {
	for i, x := range a.dataSources {
		if x == d {
			a.dataSources = append(a.dataSources[:i], a.dataSources[i+1:]...)
			return
		}
	}
}

// DataSource returns a copy of the data source's current state, or false once it is unknown
// (never configured or deleted).
func (s *Server) DataSource(accessID, name string) (DataSource, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.cfg.Now())
	_, d := s.findDataSourceLocked(accessID, name)
	if d == nil {
		return DataSource{}, false
	}
	return d.clone(), true
}
