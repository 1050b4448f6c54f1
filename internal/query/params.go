package query

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Limits of a request, from the SDS docs where they give one.
const (
	DefaultTop    = 25
	MaxTop        = 250 // query-options; the by-area page's 200 is the lower of two contradicting figures
	MaxOrderBy    = 3
	MaxIDs        = 50   // entityId in (…)
	MaxWKTPoints  = 200  // intersects and intersection
	MaxWKTArea    = 100  // square degrees: 10° of latitude by 10° of longitude
	MinNearbyKm   = 0.15 // km; the by-property page says 0.15, the by-area page 0.16
	MaxNearbyKm   = 1000.0
	MaxQueryBytes = 16 << 10 // the whole query string
	MaxFilterLen  = 8 << 10
	MaxDepth      = 64 // nesting of ( ) and not in $filter
	MaxSkip       = 1 << 30
)

// Format is the response format.
type Format int

// The formats of $format.
const (
	Atom Format = iota
	JSON
)

// Request holds the options of a request that are not about which
// entities answer: how to render them and where from.
type Request struct {
	Format    Format
	Staging   bool
	JSONP     string // callback name; "" for none
	JSONState string // jsonso, passed as the callback's second argument
	HasJSONSO bool
	Key       string
}

// Params are a request's parameters with lowercase names.
type Params map[string]string

// ParseParams splits a raw query string into parameters, names folded to
// lowercase because SDS names are not case-sensitive. format= counts as
// $format= (a docs example drops the $). The first of repeated names wins.
func ParseParams(rawQuery string) (Params, error) {
	if len(rawQuery) > MaxQueryBytes {
		return nil, badRequest("The query string is longer than %d bytes.", MaxQueryBytes)
	}
	p := Params{}
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		name, val, _ := strings.Cut(part, "=")
		n, err := url.QueryUnescape(name)
		if err != nil {
			return nil, badRequest("The query string is not URL-encoded correctly.")
		}
		v, err := url.QueryUnescape(val)
		if err != nil {
			return nil, badRequest("The value of %s is not URL-encoded correctly.", clip(n))
		}
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "format" {
			n = "$format"
		}
		if _, seen := p[n]; !seen {
			p[n] = v
		}
	}
	return p, nil
}

var jsIdentPath = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$`)

// ParseRequest reads the rendering options.
func ParseRequest(p Params) (*Request, error) {
	r := &Request{Key: p["key"]}
	switch f := strings.ToLower(strings.TrimSpace(p["$format"])); f {
	case "", "atom":
	case "json":
		r.Format = JSON
	default:
		return nil, badRequest("$format must be atom or json, not %q.", clip(f))
	}
	var err error
	if r.Staging, err = parseBool(p["isstaging"]); err != nil {
		return nil, badRequest("isStaging must be 0, 1, false or true.")
	}
	if cb, ok := p["jsonp"]; ok {
		// The name is written into script: anything but a (dotted)
		// JavaScript identifier would let a link run its own code.
		if len(cb) > 128 || !jsIdentPath.MatchString(cb) {
			return nil, badRequest("jsonp must be the name of a JavaScript function (letters, digits, _ and $, dotted), not %q.", clip(cb))
		}
		r.JSONP, r.Format = cb, JSON
	}
	r.JSONState, r.HasJSONSO = p["jsonso"]
	return r, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, strconv.ErrSyntax
}
