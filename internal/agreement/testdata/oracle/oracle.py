"""The independent DKIM and SPF verifiers of the agreement corpus.

The Go test (internal/agreement) starts this once with Debian's /usr/bin/python3 and
feeds it one JSON request a line on stdin; it answers one JSON line each on stdout. All
DNS goes over the wire to the test's resolver, given in the first request.

  {"op": "setup", "resolver": "127.0.0.1", "port": 5353, "key": "domain.pem",
   "workdir": "/tmp/...", "unbound": "/tmp/.../unbound.conf"}
  {"op": "dkim", "domain": "d.com", "selector": "sel", "verifiers": ["dkimpy", "opendkim"]}
  {"op": "spf", "sender": "bounce@mail.d.com", "helo": "mail.d.com", "ips": ["192.0.2.0"]}

Every answer is {"pass": bool, "detail": "..."}, or {"error": "..."} when the request
itself could not be carried out.

DKIM: the message is signed with dkimpy (a=rsa-sha256, c=relaxed/relaxed, d=, s=, no i=),
as domaind's milter signs. dkimpy verifies it once per TXT record at the selector, its
dnsfunc looking the name up with dnspython and returning that one record: RFC 6376
section 3.6.2.2 lets a verifier pick any of them, so dkimpy passes only if every choice
passes. OpenDKIM (opendkim -t, its libunbound forwarding to the test resolver) verifies
the same message. The verdict is pass only if every verifier named in the request passes.

SPF: pyspf's check2 (RFC 7208 check_host, with its lookup and void-lookup limits) for
each address; pass only if every address gets "pass".
"""

import importlib.metadata
import json
import logging
import os
import subprocess
import sys

import dkim
import dns.resolver
import dns.version
import spf

resolver = None
setup = {}
log = logging.getLogger("dkimpy-oracle")


class Capture(logging.Handler):
    """Keeps dkimpy's log lines, which say why a verification failed."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def txt_records(name):
    """Returns the TXT records at name (following CNAMEs) as dkimpy wants them."""
    try:
        ans = resolver.resolve(name, "TXT", raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    if ans.rrset is None:
        return []
    return [b"".join(rd.strings) for rd in ans.rrset]


def sign(domain, selector):
    msg = (
        "From: Agreement <sender@%s>\r\n"
        "To: receiver@example.net\r\n"
        "Subject: agreement corpus\r\n"
        "Date: Mon, 05 Jan 2026 10:00:00 +0000\r\n"
        "Message-ID: <agreement@%s>\r\n"
        "\r\n"
        "Hello from the agreement corpus.\r\n" % (domain, domain)
    ).encode()
    with open(setup["key"], "rb") as f:
        key = f.read()
    sig = dkim.sign(
        msg,
        selector.encode(),
        domain.encode(),
        key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    assert b"a=rsa-sha256" in sig
    return sig + msg


def dkimpy_verify(signed, domain, selector):
    name = "%s._domainkey.%s." % (selector, domain)
    records = txt_records(name)
    if not records:
        return False, "dkimpy: no TXT record at %s" % name
    notes = []
    ok = True
    for i in range(len(records)):
        def dnsfunc(qname, timeout=5, i=i):
            # The lookup is over the wire each time; the choice of record is ours.
            got = txt_records(qname.decode() if isinstance(qname, bytes) else qname)
            return got[i] if i < len(got) else None

        cap = Capture()
        logger = logging.getLogger("dkimpy-oracle-%d" % i)
        logger.handlers = [cap]
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        res = dkim.verify(signed, logger=logger, dnsfunc=dnsfunc)
        errors = [l for l in cap.lines if "valid" not in l][-1:]
        notes.append("record %d/%d %s%s" % (i + 1, len(records), "pass" if res else "fail", (": " + errors[0]) if errors and not res else ""))
        ok = ok and res
    return ok, "dkimpy: " + "; ".join(notes)


def opendkim_verify(signed, domain, selector):
    path = os.path.join(setup["workdir"], "%s.%s.eml" % (selector, domain))
    with open(path, "wb") as f:
        f.write(signed)
    conf = os.path.join(setup["workdir"], "opendkim.conf")
    if not os.path.exists(conf):
        with open(conf, "w") as f:
            f.write("Mode v\nSyslog no\nResolverConfiguration %s\n" % setup["unbound"])
    p = subprocess.run([setup["opendkim"], "-x", conf, "-t", path], capture_output=True, text=True, timeout=20)
    out = (p.stdout + p.stderr).strip()
    return p.returncode == 0 and "verification" in out and out.endswith("succeeded"), "opendkim: " + out.replace(path + ": ", "")


def do_dkim(req):
    signed = sign(req["domain"], req["selector"])
    ok, details = True, []
    for v in req["verifiers"]:
        if v == "dkimpy":
            res, d = dkimpy_verify(signed, req["domain"], req["selector"])
        elif v == "opendkim":
            res, d = opendkim_verify(signed, req["domain"], req["selector"])
        else:
            return {"error": "unknown verifier %s" % v}
        ok = ok and res
        details.append(d)
    return {"pass": ok, "detail": " | ".join(details)}


def do_spf(req):
    ok, details = True, []
    for ip in req["ips"]:
        res, exp = spf.check2(i=ip, s=req["sender"], h=req["helo"], querytime=10)
        ok = ok and res == "pass"
        details.append("%s %s%s" % (ip, res, (" (%s)" % exp) if res != "pass" and exp else ""))
    return {"pass": ok, "detail": "pyspf: " + "; ".join(details)}


def main():
    global resolver, setup
    for line in sys.stdin:
        req = json.loads(line)
        try:
            if req["op"] == "setup":
                setup = req
                resolver = dns.resolver.Resolver(configure=False)
                resolver.nameservers = [req["resolver"]]
                resolver.port = req["port"]
                resolver.lifetime = 5
                # pyspf asks dns.resolver's module-level functions, which use the
                # default resolver.
                dns.resolver.default_resolver = resolver
                resp = {"pass": True, "detail": "dkimpy %s, pyspf %s, dnspython %s" % (importlib.metadata.version("dkimpy"), spf.__version__, dns.version.version)}
            elif req["op"] == "dkim":
                resp = do_dkim(req)
            elif req["op"] == "spf":
                resp = do_spf(req)
            else:
                resp = {"error": "unknown op %r" % req["op"]}
        except Exception as e:  # the Go side reports it with the case
            resp = {"error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
