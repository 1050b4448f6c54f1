package query

import "fmt"

// Error is a request the Query API refuses; Status is its HTTP status and
// Msg says why, in words fit for the client.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func badRequest(format string, args ...any) *Error {
	return &Error{Status: 400, Msg: fmt.Sprintf(format, args...)}
}
