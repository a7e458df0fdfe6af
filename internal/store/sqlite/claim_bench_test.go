package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seededStore opens a store in a temporary directory, closed when tb ends, with n
// domains (with no records) whose next check is far away and due domains that are due
// now, inserted straight through SQL: the API would take hours to add a million domains
// with their RSA keys.
func seededStore(tb testing.TB, n, due int) *Store {
	tb.Helper()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(tb.TempDir(), "domaind.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	if _, err := s.w.ExecContext(ctx, `INSERT INTO projects (id, name, created_at) VALUES (1, 'bench', 0)`); err != nil {
		tb.Fatal(err)
	}
	future := time.Now().Add(24 * time.Hour).UnixMilli()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO domains (id, project_id, name, region, status,
		dkim_private_key, created_at, last_checked_at, next_check_at) VALUES (?, 1, ?, 'us-east-1', 'VERIFIED', x'00', 0, 0, ?)`)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n + due {
		next := future + int64(i%86400)*1000
		if i < due {
			next = 1 // long overdue
		}
		if _, err := stmt.ExecContext(ctx, fmt.Sprintf("%024x", i), fmt.Sprintf("d%d.example.com", i), next); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	return s
}

// benchClaim measures one ClaimChecks of up to 100 due domains, with share as the
// per-project share, which must claim want. A lease of zero leaves the claimed domains
// due, so every iteration claims the same ones.
func benchClaim(b *testing.B, s *Store, share, want int) {
	now := time.Now()
	b.ResetTimer()
	for b.Loop() {
		due, err := s.ClaimChecks(context.Background(), now, 0, 100, share, nil)
		if err != nil || len(due) != want {
			b.Fatalf("claimed %d: %v", len(due), err)
		}
	}
}

// BenchmarkClaimDue measures one claim of 100 due domains among many that are not
// due. The cost should stay flat from 10k to 1M rows, as the claim reads only the
// due part of the domains_due index.
func BenchmarkClaimDue(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("notdue=%d", n), func(b *testing.B) {
			s := seededStore(b, n, 100)
			benchClaim(b, s, 0, 100)
		})
	}
}

// BenchmarkClaimChecksBacklog measures one claim while one project has a backlog
// of due domains, as a tenant whose DNS never answers builds up, and another
// project has one: the claim numbers every due domain per project, so its cost
// follows the backlog, never the domains that are not due.
func BenchmarkClaimChecksBacklog(b *testing.B) {
	for _, backlog := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("due=%d", backlog), func(b *testing.B) {
			s := seededStore(b, 100_000, backlog)
			if _, err := s.w.Exec(`INSERT INTO projects (id, name, created_at) VALUES (2, 'other', 0);
				UPDATE domains SET project_id = 2 WHERE id = ?`, fmt.Sprintf("%024x", backlog-1)); err != nil {
				b.Fatal(err)
			}
			benchClaim(b, s, 16, 17)
		})
	}
}

// BenchmarkClaimChecksProjects measures one claim of 100 due domains among
// 100,000 spread over many projects: the claim probes each project once, so
// its cost follows the number of projects, which the operator creates, and not
// what the tenants add.
func BenchmarkClaimChecksProjects(b *testing.B) {
	for _, projects := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("projects=%d", projects), func(b *testing.B) {
			s := seededStore(b, 100_000, 100)
			if _, err := s.w.Exec(`WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
				INSERT INTO projects (id, name, created_at) SELECT i, 'p' || i, 0 FROM n;
				UPDATE domains SET project_id = 1 + rowid % ?`, projects, projects); err != nil {
				b.Fatal(err)
			}
			benchClaim(b, s, 16, 100)
		})
	}
}

// TestClaimUsesDueIndex checks the plan of the claim query: it must search the
// partial index of scheduled domains, never scan the table.
func TestClaimUsesDueIndex(t *testing.T) {
	s := seededStore(t, 1000, 10)
	rows, err := s.r.Query(`EXPLAIN QUERY PLAN `+claimChecksSQL,
		time.Now().UnixMilli(), time.Now().UnixMilli(), 4, `{"1":2}`, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	joined := strings.Join(plan, "; ")
	if !strings.Contains(joined, "USING INDEX domains_project_due") || strings.Contains(joined, "SCAN domains") {
		t.Fatalf("claim query plan does not use the due index: %s", joined)
	}
	if testing.Verbose() {
		t.Log(joined)
	}
}
