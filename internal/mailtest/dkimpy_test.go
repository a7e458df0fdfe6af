package mailtest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/domaind/domaind/internal/dnstest"
)

// TestVerifyDKIM checks the verifier itself: a good signature passes, and the same
// message fails once its body is changed or the published key is another.
func TestVerifyDKIM(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	record := func(k *rsa.PrivateKey) string {
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	}
	zone := dnstest.NewZone("example.com.")
	if err := zone.AddTXT("s1._domainkey.example.com.", record(key)); err != nil {
		t.Fatal(err)
	}
	srv := dnstest.Start(t, zone)

	msg := "From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello\r\n"
	var signed bytes.Buffer
	if err := dkim.Sign(&signed, strings.NewReader(msg), &dkim.SignOptions{
		Domain: "example.com", Selector: "s1", Signer: key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
	}); err != nil {
		t.Fatal(err)
	}
	if res := VerifyDKIM(t, signed.Bytes(), srv.Addr()); !res.OK || res.Domain != "example.com" || res.Selector != "s1" {
		t.Fatalf("good signature: %+v", res)
	}
	tampered := bytes.Replace(signed.Bytes(), []byte("Hello"), []byte("Hullo"), 1)
	if res := VerifyDKIM(t, tampered, srv.Addr()); res.OK {
		t.Errorf("changed body verified: %+v", res)
	}
	if err := zone.Replace("s1._domainkey.example.com. 300 IN TXT \"" + record(other) + "\""); err != nil {
		// Replace takes zone-file text; a long value is split by the server when served.
		t.Fatal(err)
	}
	if res := VerifyDKIM(t, signed.Bytes(), srv.Addr()); res.OK {
		t.Errorf("signature verified against another key: %+v", res)
	}
}
