package main

import (
	"io"
	"os"
	"strconv"
	"testing"
)

// TestStoragePerDomain seeds a SQLite database as the memory section does
// (each domain with its rotation row, through the store) and reports its
// bytes per domain from dbstat, table by table: the memory section's figure
// without its 20 minutes. DOMAIND_STORAGE_DOMAINS sets how many domains (2,000
// unless set). Each table and index has a page however few rows it holds, so
// the figure checked is the bytes beyond one page each over the domains, which
// is what a domain more costs; it is the target of issue 13 (1,500 bytes).
func TestStoragePerDomain(t *testing.T) {
	n := 2000
	if v := os.Getenv("DOMAIND_STORAGE_DOMAINS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("DOMAIND_STORAGE_DOMAINS=%q is not a positive number", v)
		}
	}
	ctx := t.Context()
	b := &bench{cfg: config{cacheDir: t.TempDir(), seedWorkers: 4}, log: io.Discard}
	s, err := b.sqliteSeeded(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.Close(); err != nil {
		t.Fatal(err)
	}
	tables, err := tableBytes(ctx, s.path)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, tb := range tables {
		total += tb.Bytes - 4096
	}
	per := float64(total) / float64(n)
	t.Logf("%d domains: %.0f bytes per domain beyond one page a table; by table and index: %s", n, per, perDomain(tables, n))
	if per > 1500 {
		t.Errorf("a seeded domain costs %.0f bytes in SQLite, more than 1,500", per)
	}
}
