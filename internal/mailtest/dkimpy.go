// Package mailtest holds helpers for end-to-end mail tests: an independent DKIM
// verifier (dkimpy, from Debian's python3-dkim) that looks keys up over the wire in
// the DNS a test serves.
package mailtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/testenv"
)

// dkimpyVerify verifies the first DKIM-Signature of the message on standard input,
// looking the key up with dnspython at the server given as arguments, and prints
// the outcome as JSON. dkimpy's own DNS helpers use the system resolver, so the
// lookup is passed in as dnsfunc.
const dkimpyVerify = `
import json, sys
import dkim, dns.resolver, dns.rdatatype
host, port = sys.argv[1], int(sys.argv[2])
r = dns.resolver.Resolver(configure=False)
r.nameservers = [host]
r.port = port
r.lifetime = 5
def txt(name, timeout=5):
    try:
        ans = r.resolve(name.decode() if isinstance(name, bytes) else name, 'TXT', raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
        return None
    for rrset in ans.response.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            return b''.join(list(rrset.items)[0].strings)
    return None
msg = sys.stdin.buffer.read()
logs = []
class Log:
    def debug(self, m, *a): logs.append(str(m) % a if a else str(m))
    info = warning = error = debug
d = dkim.DKIM(msg, logger=Log())
try:
    ok = d.verify(dnsfunc=txt)
    err = ''
except Exception as e:
    ok, err = False, repr(e)
sig = d.signature_fields or {}
print(json.dumps({'ok': bool(ok), 'error': err, 'log': logs,
    'domain': sig.get(b'd', b'').decode(), 'selector': sig.get(b's', b'').decode()}))
`

// DKIMResult is what dkimpy said of a message's first DKIM signature.
type DKIMResult struct {
	OK       bool     `json:"ok"`
	Error    string   `json:"error"`
	Log      []string `json:"log"`
	Domain   string   `json:"domain"`   // d= of the signature
	Selector string   `json:"selector"` // s= of the signature
}

// VerifyDKIM has dkimpy verify the first DKIM-Signature of msg, fetching the key
// from the DNS server at dnsAddr (host:port on loopback, answering for the
// signature's selector name). It skips the test when Debian's python3-dkim or
// python3-dnspython is missing, and fails it under CI=true.
func VerifyDKIM(t testing.TB, msg []byte, dnsAddr string) DKIMResult {
	t.Helper()
	python := testenv.LookBinary(t, "python3", "python3")
	// Debian's packages install for the system interpreter, which may not be the
	// first python3 in PATH (pyenv, virtualenvs).
	if _, err := exec.LookPath("/usr/bin/python3"); err == nil {
		python = "/usr/bin/python3"
	}
	if out, err := exec.Command(python, "-c", "import dkim, dns.resolver").CombinedOutput(); err != nil {
		testenv.SkipOrFail(t, fmt.Sprintf("dkimpy or dnspython is missing (%s): apt-get install python3-dkim python3-dnspython", bytes.TrimSpace(out)))
	}
	host, port, err := net.SplitHostPort(dnsAddr)
	if err != nil {
		t.Fatalf("VerifyDKIM: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", dkimpyVerify, host, port)
	cmd.Stdin = bytes.NewReader(msg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dkimpy: %v\n%s", err, stderr.String())
	}
	var res DKIMResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("dkimpy printed %q: %v", out, err)
	}
	return res
}
