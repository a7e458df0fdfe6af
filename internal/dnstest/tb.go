package dnstest

import "context"

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
