// Package nightly decides which data sources a nightly run backs up within
// the account's SDS job limits, and measures how stale each data source's
// backup is.
//
// SDS allows an enterprise account 50 jobs per 24 hours and 10 in process at
// once, counting every job of the account (people's too). Download jobs count
// but are not in the account's job list, so sdsops counts its own from the
// catalog. A data source whose published version already has a verified
// archive costs nothing; the others are taken longest-unarchived first up to
// the budget, and the rest is carried to the next night. With a budget of B
// jobs a night, a backlog of N changed data sources is archived within
// ⌈N/B⌉ nights.
package nightly

import (
	"fmt"
	"time"
)

// SDS account limits (enterprise keys), from "Geocode and Data Source
// Limits".
const (
	SDSJobsPerWindow = 50
	SDSMaxInProcess  = 10
	// SDSWindow is the period the job count is taken over.
	SDSWindow = 24 * time.Hour
)

// Defaults of Limits.
const (
	DefaultBudget      = 40 // of the 50, leaving room for people and restores
	DefaultConcurrency = 5
	DefaultRPO         = 48 * time.Hour
	DefaultHorizon     = 6 * time.Hour
)

// Limits are the operator's settings. Zero fields take the defaults.
type Limits struct {
	// Budget is the number of SDS jobs sdsops and everyone else together may
	// have started in any 24 hours before sdsops stops starting more.
	Budget int
	// Concurrency caps the account's jobs in process, sdsops's and others'.
	Concurrency int
	// RPO is the recovery-point objective: a data source whose current
	// version has had no verified archive for longer is past it.
	RPO time.Duration
	// Horizon is how long after the plan a scheduled job may wait for budget
	// to free up (jobs of the previous night leaving the 24 h window).
	// Anything that would wait longer is carried to the next night.
	Horizon time.Duration
}

// WithDefaults fills in zero fields and checks the result.
func (l Limits) WithDefaults() (Limits, error) {
	if l.Budget == 0 {
		l.Budget = DefaultBudget
	}
	if l.Concurrency == 0 {
		l.Concurrency = DefaultConcurrency
	}
	if l.RPO == 0 {
		l.RPO = DefaultRPO
	}
	if l.Horizon == 0 {
		l.Horizon = DefaultHorizon
	}
	switch {
	case l.Budget < 1 || l.Budget > SDSJobsPerWindow:
		return l, fmt.Errorf("nightly: budget %d outside 1..%d jobs per 24 h", l.Budget, SDSJobsPerWindow)
	case l.Concurrency < 1 || l.Concurrency > SDSMaxInProcess:
		return l, fmt.Errorf("nightly: concurrency %d outside 1..%d", l.Concurrency, SDSMaxInProcess)
	case l.RPO < time.Hour:
		return l, fmt.Errorf("nightly: recovery-point objective %s is under an hour", l.RPO)
	case l.Horizon < 0 || l.Horizon > SDSWindow:
		return l, fmt.Errorf("nightly: horizon %s outside 0..%s", l.Horizon, SDSWindow)
	}
	return l, nil
}
