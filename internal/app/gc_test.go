package app_test

import (
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/domaind/domaind/internal/apptest"
)

// TestStartSetsGC checks that Start sets the garbage collector's target and a
// soft memory limit of at least 1 GiB and three times the read cache, and
// that a GCPercent of zero leaves both alone.
func TestStartSetsGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	for _, tt := range []struct {
		percent   int
		cacheMiB  int64
		want      int
		wantLimit int64
	}{
		{percent: 321, cacheMiB: 256, want: 321, wantLimit: 1 << 30},
		{percent: 400, cacheMiB: 1024, want: 400, wantLimit: 3 << 30},
		{percent: 0, cacheMiB: 256, want: 77, wantLimit: 5 << 20},
	} {
		debug.SetGCPercent(77)
		debug.SetMemoryLimit(5 << 20)
		cfg := apptest.Config(make([]byte, 32))
		cfg.DB = "sqlite:" + filepath.Join(t.TempDir(), "d.db")
		cfg.DNS = apptest.AuthoritativeDNS([]string{"127.0.0.1"}, 1)
		cfg.NoScheduler, cfg.NoDeliverer, cfg.NoRotator = true, true, true
		cfg.GCPercent, cfg.ReadCache.MaxBytes = tt.percent, tt.cacheMiB<<20
		a := apptest.New(t, cfg)
		a.Start()
		if got := debug.SetGCPercent(77); got != tt.want {
			t.Errorf("GCPercent %d: the collector's target is %d, want %d", tt.percent, got, tt.want)
		}
		if got := debug.SetMemoryLimit(-1); got != tt.wantLimit {
			t.Errorf("GCPercent %d, read cache %d MiB: the memory limit is %d, want %d", tt.percent, tt.cacheMiB, got, tt.wantLimit)
		}
		a.Close()
	}
}
