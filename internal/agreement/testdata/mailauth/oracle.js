'use strict';

// The independent DMARC verifier of the agreement corpus: mailauth's DMARC check, as a
// receiver runs it, with its DNS sent over the wire to the test's resolver. The Go test
// (internal/agreement) starts this once and feeds it one JSON request a line:
//
//   {"op": "setup", "resolver": "127.0.0.1", "port": 5353}
//   {"op": "dmarc", "from": "news.example.com"}
//
// and reads one JSON line back each: {"pass": bool, "detail": "..."} or {"error": "..."}.
// pass means a DMARC policy applies to mail from the domain (its own record or its
// organizational domain's): mailauth's result is "pass" or "fail", not "none".

const readline = require('node:readline');
const { Resolver } = require('node:dns').promises;
const { dmarc } = require('mailauth/lib/dmarc');
const { version } = require('mailauth/package.json');

let resolver;

async function handle(req) {
    switch (req.op) {
        case 'setup':
            resolver = new Resolver({ timeout: 2000, tries: 2 });
            resolver.setServers([`${req.resolver}:${req.port}`]);
            return { pass: true, detail: `mailauth ${version}, node ${process.version}` };
        case 'dmarc': {
            const res = await dmarc({
                headerFrom: `sender@${req.from}`,
                // No aligned identifier: the question is whether a policy applies, not
                // whether this message passes it.
                spfDomains: [],
                dkimDomains: [],
                resolver: (name, type) => resolver.resolve(name, type)
            });
            const result = res && res.status && res.status.result;
            const detail = `mailauth: ${result}` + (res.rr ? ` from ${JSON.stringify(res.rr)}` : '') + (res.policy !== undefined ? ` policy=${res.policy}` : '') + (res.error ? ` error=${res.error}` : '');
            return { pass: result === 'pass' || result === 'fail', detail };
        }
        default:
            return { error: `unknown op ${req.op}` };
    }
}

const rl = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
rl.on('line', line => {
    // One request at a time, in order, so answers line up with requests.
    queue = queue.then(async () => {
        let resp;
        try {
            resp = await handle(JSON.parse(line));
        } catch (err) {
            resp = { error: `${err.name}: ${err.message}` };
        }
        process.stdout.write(JSON.stringify(resp) + '\n');
    });
});
