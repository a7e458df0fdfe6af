package app_test

import (
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/domaind/domaind/internal/apptest"
)

// TestStartSetsGC checks that Start sets the garbage collector's target and a
// soft memory limit of 256 MiB and twice the read cache, and that a GCPercent
// of zero, or GOGC or GOMEMLIMIT in the environment, leaves both alone.
func TestStartSetsGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	const untouched, noLimit = 77, 1 << 40
	for _, tt := range []struct {
		name      string
		percent   int
		cacheMiB  int64
		env, val  string // a variable of the environment, if any, and its value
		want      int
		wantLimit int64
	}{
		{name: "default cache", percent: 321, cacheMiB: 256, want: 321, wantLimit: 768 << 20},
		{name: "big cache", percent: 400, cacheMiB: 1024, want: 400, wantLimit: 2304 << 20},
		{name: "off", percent: 0, cacheMiB: 256, want: untouched, wantLimit: noLimit},
		{name: "GOGC", percent: 400, cacheMiB: 256, env: "GOGC", val: "150", want: untouched, wantLimit: noLimit},
		{name: "GOMEMLIMIT", percent: 400, cacheMiB: 256, env: "GOMEMLIMIT", val: "150MiB", want: untouched, wantLimit: noLimit},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOGC", "") // empty is unset, as the runtime reads it
			t.Setenv("GOMEMLIMIT", "")
			if tt.env != "" {
				t.Setenv(tt.env, tt.val)
			}
			debug.SetGCPercent(untouched)
			debug.SetMemoryLimit(noLimit)
			cfg := apptest.Config(make([]byte, 32))
			cfg.DB = "sqlite:" + filepath.Join(t.TempDir(), "d.db")
			cfg.DNS = apptest.AuthoritativeDNS([]string{"127.0.0.1"}, 1)
			cfg.NoScheduler, cfg.NoDeliverer, cfg.NoRotator = true, true, true
			cfg.GCPercent, cfg.ReadCache.MaxBytes = tt.percent, tt.cacheMiB<<20
			a := apptest.New(t, cfg)
			a.Start()
			if got := debug.SetGCPercent(untouched); got != tt.want {
				t.Errorf("the collector's target is %d, want %d", got, tt.want)
			}
			if got := debug.SetMemoryLimit(-1); got != tt.wantLimit {
				t.Errorf("the memory limit is %d, want %d", got, tt.wantLimit)
			}
		})
	}
}
