package dnstest

import (
	"context"
	"io"
)

// TB is the part of testing.TB that [Start], [StartNet] and
// [StartCachingResolver] use; a *testing.T or *testing.B is one. It is
// declared here rather than taken as testing.TB so that this package does
// not import testing: programs use it too (cmd/devdns serves the README
// walkthrough's zone with it), and a program should not link the testing
// package.
type TB interface {
	Helper()
	Context() context.Context
	Cleanup(func())
	Fatal(args ...any)
}

// started is what [Start], [StartNet] and [StartCachingResolver] do with what
// they started, v, or the error of starting it: fail the test on an error, and
// close v when the test ends.
func started[T io.Closer](t TB, v T, err error) T {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}
