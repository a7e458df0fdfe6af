package signing

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestExportRefusesHostileNames checks that a name that could leave the keys
// folder or forge a table line stops the export before anything is written.
func TestExportRefusesHostileNames(t *testing.T) {
	priv := testKey(t)
	for _, tc := range []struct {
		name string
		key  Key
		want string
	}{
		{"path in the domain", Key{Domain: "../../etc/example.com", Selector: "s"}, "not a plain domain name"},
		{"newline in the domain", Key{Domain: "example.com\n*@victim.example", Selector: "s"}, "not a plain domain name"},
		{"space in the domain", Key{Domain: "example.com other.example", Selector: "s"}, "not a plain domain name"},
		{"upper case", Key{Domain: "Example.com", Selector: "s"}, "not a plain domain name"},
		{"one label", Key{Domain: "localhost", Selector: "s"}, "not a plain domain name"},
		{"slash in the selector", Key{Domain: "example.com", Selector: "a/../../b"}, "not a plain DNS name"},
		{"colon in the selector", Key{Domain: "example.com", Selector: "a:b"}, "not a plain DNS name"},
		{"empty selector", Key{Domain: "example.com", Selector: ""}, "not a plain DNS name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			tc.key.Private = priv
			_, err := Export(t.Context(), dir, []Key{tc.key}, FormatOpenDKIM, NoOwner, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused export created %s (%v)", dir, err)
			}
		})
	}

	// Two keys that would share one file name stop the export too.
	_, err := Export(t.Context(), filepath.Join(t.TempDir(), "out"), []Key{
		{Domain: "x.example.com", Selector: "s", Private: priv},
		{Domain: "x.example", Selector: "com.s", Private: priv},
	}, FormatJSON, NoOwner, nil)
	if err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("colliding file names: err = %v", err)
	}
}

// TestExportLockAndLeftovers checks that a second export into a folder another
// export holds fails at once, and that temporary files of a crashed export are
// cleaned up by the next one.
func TestExportLockAndLeftovers(t *testing.T) {
	dir := t.TempDir()
	keys := []Key{{Domain: "example.com", Selector: "s", Private: testKey(t)}}
	if _, err := Export(t.Context(), dir, keys, FormatOpenDKIM, NoOwner, nil); err != nil {
		t.Fatal(err)
	}
	unlock, err := lock(filepath.Join(dir, lockFile), NoOwner)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Export(t.Context(), dir, keys, FormatOpenDKIM, NoOwner, nil); !errors.Is(err, ErrExportLocked) {
		t.Errorf("export while another holds the folder: err = %v, want ErrExportLocked", err)
	}
	unlock()

	leftovers := []string{filepath.Join(dir, tmpPrefix+"123"), filepath.Join(dir, KeysDir, tmpPrefix+"456")}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("half a key"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Export(t.Context(), dir, keys, FormatOpenDKIM, NoOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 0 || res.Removed != 0 || res.Keys != 1 {
		t.Errorf("unchanged re-export: %+v, want 1 key, nothing written or removed", res)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leftover %s is still there (%v)", p, err)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for in, ok := range map[string]bool{"opendkim": true, "json": true, "": false, "OpenDKIM": false, "postfix": false} {
		if _, err := ParseFormat(in); (err == nil) != ok {
			t.Errorf("ParseFormat(%q) error = %v, want ok %v", in, err, ok)
		}
	}
}

// TestExportReloadsBeforeRemoving checks the order a running signer needs: when
// the reload hook runs, the new tables no longer name the stale key but its file
// is still there; a failed reload keeps the stale key for the next run.
func TestExportReloadsBeforeRemoving(t *testing.T) {
	dir := t.TempDir()
	a := Key{Domain: "a.example", Selector: "s", Private: testKey(t)}
	b := Key{Domain: "b.example", Selector: "s", Private: testKey(t)}
	if _, err := Export(t.Context(), dir, []Key{a, b}, FormatOpenDKIM, NoOwner, nil); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, KeysDir, KeyFileName(b))
	var calls int
	check := func(context.Context) error {
		calls++
		table, err := os.ReadFile(filepath.Join(dir, "KeyTable"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(table), "b.example") {
			t.Errorf("at reload the KeyTable still names b.example:\n%s", table)
		}
		if _, err := os.Stat(stale); err != nil {
			t.Errorf("at reload the stale key is already gone: %v", err)
		}
		return nil
	}
	failing := func(ctx context.Context) error { check(ctx); return errors.New("opendkim is not running") }
	if _, err := Export(t.Context(), dir, []Key{a}, FormatOpenDKIM, NoOwner, failing); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("failed reload: err = %v, want it returned", err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("a failed reload removed the stale key: %v", err)
	}
	res, err := Export(t.Context(), dir, []Key{a}, FormatOpenDKIM, NoOwner, check)
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 1 || calls != 2 {
		t.Errorf("after a good reload: removed %d, reload calls %d; want 1 and 2", res.Removed, calls)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale key still there after a good reload: %v", err)
	}
}
