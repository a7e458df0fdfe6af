// Package agreement holds no code: its test is the agreement corpus, the proof that
// domaind's DKIM, SPF and DMARC verdicts match those of verifiers that are not domaind's.
//
// Each case in testdata/cases publishes a setup in a DNS tree on loopback (internal/dnstest);
// domaind's checker judges it by walking the delegations, and independent verifiers judge
// it over the wire through a resolver in front of the same servers: dkimpy and OpenDKIM
// verify a message signed as domaind's milter signs it, pyspf runs check_host for the
// platform's sending addresses, and mailauth looks for the DMARC policy that applies. The
// test fails on any disagreement. See the README, "How domaind checks DNS".
package agreement
