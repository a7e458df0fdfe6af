package testenv

import (
	"testing"
	"time"
)

// Receive returns the next value from ch, failing the test with "none within
// 10s" if none comes by then; what names the awaited value in that message.
// The bound only keeps a hung program from hanging the test: no test depends
// on a value coming sooner.
func Receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: none within 10s", what)
		var zero T
		return zero
	}
}
