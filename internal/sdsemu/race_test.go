//go:build race

package sdsemu

const raceEnabled = true
