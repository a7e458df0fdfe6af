package domains

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// DefaultKeygenWait is how long an add waits for a key-generation slot when
// KeyGate is given no bound. Generating a 2048-bit RSA key takes about 100ms of
// one core, so a few seconds of queue is a few dozen keys per core ahead: long
// enough to absorb a burst, short enough that a flood is refused before clients
// time out.
const DefaultKeygenWait = 5 * time.Second

// keygenRetryAfter is what a refused add is told to wait before trying again.
const keygenRetryAfter = 2 * time.Second

// BusyError is returned by Add when every key-generation slot stayed taken for
// the whole wait: the machine is busy generating other domains' keys. Front
// ends answer it with a "try again" and RetryAfter.
type BusyError struct {
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("domains: every key-generation slot is busy; try again in %s", e.RetryAfter)
}

// KeyGate bounds how many DKIM keys are generated at once, machine-wide. RSA key
// generation is pure CPU, so without a bound a burst of adds (from one tenant or
// many) would pin every core and slow every other request; with it, adds queue.
type KeyGate struct {
	slots   chan struct{}
	wait    time.Duration
	waiting atomic.Int64
}

// NewKeyGate returns a gate letting n keys be generated at once (n < 1:
// GOMAXPROCS) and an add wait at most wait for its turn (wait <= 0:
// DefaultKeygenWait).
func NewKeyGate(n int, wait time.Duration) *KeyGate {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	if wait <= 0 {
		wait = DefaultKeygenWait
	}
	return &KeyGate{slots: make(chan struct{}, n), wait: wait}
}

// Size returns how many keys may be generated at once.
func (g *KeyGate) Size() int { return cap(g.slots) }

// Waiting returns how many adds are waiting for a slot now.
func (g *KeyGate) Waiting() int { return int(g.waiting.Load()) }

// Acquire takes a slot, waiting at most the gate's wait and no longer than ctx
// lives: a client that went away stops waiting, and its add does nothing. It
// returns a *BusyError when the wait ran out. The caller must call the returned
// release exactly once. Add calls it; anything else that generates keys in the
// process should too.
func (g *KeyGate) Acquire(ctx context.Context) (release func(), err error) {
	release = func() { <-g.slots }
	select {
	case g.slots <- struct{}{}:
		return release, nil
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	timer := time.NewTimer(g.wait)
	defer timer.Stop()
	select {
	case g.slots <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("domains: waiting to generate a key: %w", ctx.Err())
	case <-timer.C:
		return nil, &BusyError{RetryAfter: keygenRetryAfter}
	}
}
