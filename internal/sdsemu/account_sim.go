package sdsemu

import (
	"fmt"
	"slices"
	"strings"
)

// Changing an account while the server runs, for simulations of an account over time (new
// versions published, data sources created). The key table is fixed when the server starts,
// so a data source added later must use keys the account already has, in the same role.

// PublishVersion makes v the published version of a data source: the previous published
// version becomes the newest prior one (at most two are kept), as a completed load or a
// publish of a staged version would leave it.
func (s *Server) PublishVersion(accessID, name string, v Version) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.cfg.Now())
	_, d := s.findDataSourceLocked(accessID, name)
	if d == nil {
		return fmt.Errorf("sdsemu: publish version: data source %s/%s not found", accessID, name)
	}
	next := d.clone()
	next.Prior = append([]Version{d.Published}, d.Prior...)
	if len(next.Prior) > maxPriorVersions {
		next.Prior = next.Prior[:maxPriorVersions]
	}
	next.Published = v
	if next.Staged != nil && strings.EqualFold(next.Staged.JobID, v.JobID) {
		next.Staged = nil // the staged version was published
	}
	if err := next.validate(); err != nil {
		return fmt.Errorf("sdsemu: publish version of %s/%s: %w", accessID, name, err)
	}
	*d = next
	return nil
}

// AddDataSource creates a data source in the named account. Its master and query keys must
// already be keys of that account in the same role.
func (s *Server) AddDataSource(accountName string, d DataSource) error {
	if err := d.validate(); err != nil {
		return fmt.Errorf("sdsemu: add data source %s/%s: %w", d.AccessID, d.Name, err)
	}
	for _, k := range []struct {
		key  string
		want KeyClass
	}{{d.MasterKey, KeyMaster}, {d.QueryKey, KeyQuery}} {
		ki, ok := s.keys[k.key]
		if !ok || ki.class != k.want || ki.acct.name != accountName {
			return fmt.Errorf("sdsemu: add data source %s/%s: its %s key is not a %s key of account %s", d.AccessID, d.Name, k.want, k.want, accountName)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.accounts, func(a *account) bool { return a.name == accountName })
	if i < 0 {
		return fmt.Errorf("sdsemu: add data source: no account %s", accountName)
	}
	acct := s.accounts[i]
	if _, dup := s.findDataSourceLocked(d.AccessID, d.Name); dup != nil {
		return fmt.Errorf("sdsemu: add data source %s/%s: it exists", d.AccessID, d.Name)
	}
	if len(acct.dataSources) >= s.cfg.MaxDataSources {
		return fmt.Errorf("sdsemu: add data source %s/%s: account %s has the maximum of %d", d.AccessID, d.Name, accountName, s.cfg.MaxDataSources)
	}
	c := d.clone()
	acct.dataSources = append(acct.dataSources, &c)
	return nil
}

// RemoveDataSource removes a data source at once, as if its delete job had completed, freeing
// its slot in the account.
func (s *Server) RemoveDataSource(accessID, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	acct, d := s.findDataSourceLocked(accessID, name)
	if d == nil {
		return fmt.Errorf("sdsemu: remove data source: %s/%s not found", accessID, name)
	}
	acct.remove(d)
	return nil
}
