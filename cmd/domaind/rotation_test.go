package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/domaind/domaind/internal/domain"
)

// TestDKIMRotateCommand: `domaind dkim rotate DOMAIN` starts a rotation (the
// next key, at the second selector, with the --dkim-bits given) that the
// domain's v1 records show at once, refuses a second while it runs, and
// names an unknown domain.
func TestDKIMRotateCommand(t *testing.T) {
	f := newExportFixture(t, "shop.example.")
	d := f.add("shop.example", true)
	rotate := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := run(t.Context(), append([]string{"dkim", "rotate"}, args...), &out, &errb)
		return out.String(), errb.String(), err
	}
	// Another master key would seal a next key no signer can open.
	if _, _, err := rotate("shop.example", "--db", f.db, "--master-key", strings.Repeat("A", 43)+"="); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("dkim rotate with another master key: %v", err)
	}
	out, errOut, err := rotate("shop.example", "--db", f.db, "--master-key", f.key, "--dkim-bits", "2048")
	if err != nil || !strings.Contains(out, "next key at selector autosend2") {
		t.Fatalf("dkim rotate: %v\n%s%s", err, out, errOut)
	}
	got, err := f.svc.Get(t.Context(), f.project, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	next := got.Record(domain.KeyDKIMNext)
	// A 2048-bit key's record is about 400 bytes; a 1024-bit one (the
	// fixture's --dkim-bits) about 220.
	if next == nil || next.Name != "autosend2._domainkey.shop.example" || len(next.Value) < 380 {
		t.Fatalf("next record after dkim rotate: %+v", next)
	}
	if cur := got.Record(domain.KeyDKIM); cur.Name != "autosend._domainkey.shop.example" || !cur.Verified {
		t.Fatalf("dkim rotate changed the signing record: %+v", cur)
	}
	if _, errOut, err = rotate("--db", f.db, "--master-key", f.key, "shop.example"); err != nil || !strings.Contains(errOut, "already running (state generated)") {
		t.Fatalf("second dkim rotate: %v\n%s", err, errOut)
	}
	if _, _, err = rotate("nowhere.example", "--db", f.db, "--master-key", f.key); err == nil || !strings.Contains(err.Error(), "no domain nowhere.example") {
		t.Fatalf("dkim rotate of an unknown domain: %v", err)
	}
}

// TestServeRefusesBadRotationSettings: each bad --dkim-* or --dns-update-*
// setting stops serve with an error naming the flag.
func TestServeRefusesBadRotationSettings(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "d.db")
	serveWith := func(flags ...string) []string {
		return append([]string{"serve", "--db", db, "--dev", "--data-dir", dir, "--resolvers", "127.0.0.1:53", "--listen", "127.0.0.1:0"}, flags...)
	}
	cname := []string{"--dkim-mode", "cname", "--dkim-zone", "dkim.platform.example", "--dns-update-server", "127.0.0.1:53", "--dns-update-tsig", "hmac-sha256:k:c2VjcmV0"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{serveWith("--dkim-mode", "dane"), "--dkim-mode"},
		{serveWith("--dkim-zone", "dkim.platform.example"), "--dkim-mode cname"},
		{serveWith("--dkim-mode", "cname"), "--dkim-zone"},
		{serveWith("--dkim-mode", "cname", "--dkim-zone", "dkim.platform.example"), "--dns-update-server"},
		{serveWith("--dkim-mode", "cname", "--dkim-zone", "dkim.platform.example", "--dns-update-server", "ns:53"), "--dns-update-tsig"},
		{serveWith(append(cname, "--dns-update-tsig", "hmac-md5:k:c2VjcmV0")...), "--dns-update-tsig"},
		{serveWith(append(cname, "--dns-update-server", "no-port")...), "--dns-update-server"},
		{serveWith("--dkim-rotate-every", "soon"), "--dkim-rotate-every"},
		{serveWith("--dkim-retire-after", "0d"), "--dkim-retire-after"},
		{serveWith("--dkim-rotate-every", "5d", "--dkim-retire-after", "7d"), "--dkim-rotate-every"},
		{serveWith("--dkim-bits", "512"), "--dkim-bits"},
	} {
		_, _, err := runCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.args[8:], err, tc.want)
		}
	}
}
