package watched

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"slices"
	"testing"

	"github.com/domaind/domaind/internal/store"
)

// reads are the methods of store.Store that change no row of domains or
// domain_records: the reads, the writes of keys, sessions and webhooks, and
// InitRotations, which only adds rotation rows.
var reads = []string{
	"APIKeyByHash", "APIKeys", "Close", "CreateAPIKey", "CreateSession", "CreateWebhook", "ClaimDeliveries",
	"DeleteSession", "DeleteWebhook", "Deliveries", "Domain", "DomainIDsByName", "Domains", "DomainsByID", "EnsureProject", "InitRotations",
	"Events", "ExpireDeliveries", "OldestDue", "RecordAttempt", "RevokeAPIKey", "Rotation", "SealedDKIMKey",
	"SessionByHash", "SigningKeys", "Webhooks",
}

// TestEveryMethodClassified fails when store.Store gains a method that this
// package neither overrides (a write of domains, which must invalidate) nor
// lists among the reads: a new write would otherwise pass by the caches.
func TestEveryMethodClassified(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "watched.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var overridden []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv == nil || !fn.Name.IsExported() {
			continue
		}
		if star, ok := fn.Recv.List[0].Type.(*ast.StarExpr); ok && star.X.(*ast.Ident).Name == "Store" {
			overridden = append(overridden, fn.Name.Name)
		}
	}
	iface := reflect.TypeFor[store.Store]()
	for i := range iface.NumMethod() {
		name := iface.Method(i).Name
		read, over := slices.Contains(reads, name), slices.Contains(overridden, name)
		switch {
		case read && over:
			t.Errorf("%s is listed as a read but watched.Store overrides it", name)
		case !read && !over:
			t.Errorf("store.Store.%s is neither overridden by watched.Store (a write of domains) nor listed in reads", name)
		}
	}
	if len(overridden) < 10 {
		t.Fatalf("found only %d methods of *Store in watched.go: %v", len(overridden), overridden)
	}
}
