package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/verify"
)

const checkUsage = `usage: domaind check [flags] DOMAIN

Checks the DNS records an email-sending domain publishes, without a server or a
database, and explains what is wrong. Flags may come before or after DOMAIN.
Exit status: 0 when every record checked verified, 1 when any is missing or
wrong, 2 when DNS could not answer for some (or on bad usage).

Flags:
`

// checkTimeout bounds a whole check, however slow DNS is, as the verifier
// bounds one check of one domain.
const checkTimeout = verify.DefaultCheckTimeout

// The check command's JSON output, printed with --json:
//
//	{"domain": "example.com", "records": [{"key", "name", "type", "expected",
//	  "status", "found", "problems": [{"code", "message"}],
//	  "propagation": [{"server", "role", "zone"?, "status", "values", "error"?}]}]}
//
// key is the record's role as the v2 API names it; expected is the value looked
// for, or null when any valid record of the kind verifies; found, problems and
// propagation are [] rather than null when empty.
type checkOutput struct {
	Domain  string        `json:"domain"`
	Records []checkRecord `json:"records"`
}

type checkRecord struct {
	Key      string  `json:"key"`
	Name     string  `json:"name"`
	Type     string  `json:"type"`
	Expected *string `json:"expected"`
	domain.CheckView
}

// checkOptions are the expectations the check flags describe.
type checkOptions struct {
	dkimSelector      string
	dkimKey           string // the expected DKIM record; empty: any valid DKIM key
	ownershipPrefix   string
	ownershipToken    string // empty: the ownership record is not checked
	mailFromSubdomain string
	expectMX          string // empty: any MX host
	spfInclude        string // empty: any valid SPF record
	inbound           bool   // also check the receiving side: the MX at the domain
	inboundMX         string // empty: any MX host (alone, and not a null MX)
}

// checkCmd runs `domaind check DOMAIN`: the verifier's DNS checks of one domain,
// printed for a person or, with --json, for a program.
func checkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, checkUsage)
		fs.PrintDefaults()
	}
	var dnsf dnsFlags
	dnsf.register(fs)
	def := records.DefaultConfig()
	var o checkOptions
	fs.StringVar(&o.dkimSelector, "dkim-selector", def.DKIMSelector, "DKIM selector")
	fs.StringVar(&o.dkimKey, "dkim-key", "", "expected DKIM key: the base64 public key (the p= value) or the whole record; empty accepts any valid DKIM key")
	fs.StringVar(&o.ownershipPrefix, "ownership-prefix", def.OwnershipPrefix, "ownership record label: the record is _PREFIX.DOMAIN")
	fs.StringVar(&o.ownershipToken, "ownership-token", "", "the whole expected value of the ownership TXT record; the record is checked only when given")
	fs.StringVar(&o.mailFromSubdomain, "mail-from-subdomain", def.MailFromSubdomain, "label of the MAIL FROM domain")
	fs.StringVar(&o.expectMX, "expect-mx", "", "expected MAIL FROM MX host; empty accepts any MX host")
	fs.StringVar(&o.spfInclude, "expect-spf-include", "", "domain the MAIL FROM SPF record must include; empty accepts any valid SPF record")
	fs.BoolVar(&o.inbound, "inbound", false, "also check the receiving side: the MX at the domain itself, alone and not a null MX")
	fs.StringVar(&o.inboundMX, "expect-inbound-mx", "", "with --inbound, the expected inbound MX host; empty accepts any host")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")

	usageErr := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "domaind check: "+format+"\n", a...)
		fmt.Fprintln(stderr, `usage: domaind check [flags] DOMAIN (see "domaind check -h")`)
		return exitCode(2)
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return exitCode(2) // the flag package has printed the error and the usage
	}
	// Fill what the command line left out from the environment, as every command does.
	if err := parseFlags(fs, nil); err != nil {
		return usageErr("%v", err)
	}
	if len(pos) != 1 {
		return usageErr("give exactly one DOMAIN, got %d arguments", len(pos))
	}
	name, err := domain.NormalizeNameWith(pos[0], domain.NameOptions{AllowPrivate: dnsf.allowPrivate})
	if err != nil {
		var ne *domain.NameError
		if errors.As(err, &ne) {
			return usageErr("%q is not a domain name: %s (rule %s)", domain.Truncate(pos[0], 80), ne.Message, ne.Rule)
		}
		return usageErr("%v", err)
	}
	if err := o.normalize(); err != nil {
		return usageErr("%v", err)
	}
	checker, err := dnsf.checker()
	if err != nil {
		return usageErr("%v", err)
	}

	exps := o.expectations(name)
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	obs := checker.Check(ctx, exps)
	out := checkOutput{Domain: name, Records: make([]checkRecord, len(exps))}
	for i, e := range exps {
		out.Records[i] = toCheckRecord(e, obs[i])
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("check: write output: %w", err)
		}
	} else if err := printCheck(stdout, out, o.ownershipToken == ""); err != nil {
		return fmt.Errorf("check: write output: %w", err)
	}
	if code := checkExit(out.Records); code != 0 {
		return exitCode(code)
	}
	return nil
}

// parseInterspersed parses args into fs letting flags come after positional
// arguments too, as in "domaind check example.com --json", and returns the
// positional arguments. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// normalize trims the options and refuses values no DNS record could match,
// reusing the records package's rules for the names it builds.
func (o *checkOptions) normalize() error {
	o.dkimKey = strings.TrimSpace(o.dkimKey)
	o.ownershipToken = strings.TrimSpace(o.ownershipToken)
	o.expectMX = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o.expectMX)), ".")
	o.spfInclude = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o.spfInclude)), ".")

	rc := records.DefaultConfig()
	rc.DKIMSelector, rc.OwnershipPrefix, rc.MailFromSubdomain = o.dkimSelector, o.ownershipPrefix, o.mailFromSubdomain
	if err := rc.Validate(); err != nil {
		return err
	}
	if o.expectMX != "" {
		rc := records.DefaultConfig()
		rc.MXTemplate = o.expectMX
		if rc.Validate() != nil || strings.Contains(o.expectMX, "{") {
			return fmt.Errorf("--expect-mx %q must be a host name such as feedback-smtp.us-east-1.amazonses.com", o.expectMX)
		}
	}
	if o.spfInclude != "" {
		rc := records.DefaultConfig()
		rc.SPFInclude = o.spfInclude
		if rc.Validate() != nil {
			return fmt.Errorf("--expect-spf-include %q must be a domain name such as amazonses.com", o.spfInclude)
		}
	}
	if o.dkimKey != "" {
		// The key alone becomes the record domaind generates for it; a whole record is
		// expected as given. Either way the DKIM check compares key material, so any
		// record a receiver accepts for the key verifies.
		record, _, err := dnscheck.DKIMRecordFor(o.dkimKey)
		if err != nil {
			return fmt.Errorf("--dkim-key must be the base64 RSA public key (the p= value) or the whole DKIM record (v=DKIM1; k=rsa; p=...): %w", err)
		}
		o.dkimKey = record
	}
	return nil
}

// expectations returns what the options expect of the domain name, with the
// record names the records package gives a domain it generates. The ownership
// record is left out when no token is given: without one there is nothing to
// compare, and any TXT record would prove nothing.
func (o *checkOptions) expectations(name string) []dnscheck.Expectation {
	rc := records.DefaultConfig()
	rc.DKIMSelector, rc.OwnershipPrefix, rc.MailFromSubdomain = o.dkimSelector, o.ownershipPrefix, o.mailFromSubdomain
	names := rc.NamesOf(name)
	mailFrom := names.MailFrom
	var exps []dnscheck.Expectation
	if o.ownershipToken != "" {
		exps = append(exps, dnscheck.Expectation{Key: domain.KeyOwnership, Name: names.Ownership, Type: "TXT", Value: o.ownershipToken})
	}
	exps = append(exps,
		dnscheck.Expectation{Key: domain.KeyDKIM, Name: names.DKIM, Type: "TXT", Value: o.dkimKey},
		dnscheck.Expectation{Key: domain.KeyMailFromMX, Name: mailFrom, Type: "MX", Value: o.expectMX, Priority: domain.MXPriority},
		dnscheck.Expectation{Key: domain.KeyMailFromSPF, Name: mailFrom, Type: "TXT", Value: spfValue(o.spfInclude)},
		// Any valid DMARC policy will do, as it does for the verifier.
		dnscheck.Expectation{Key: domain.KeyDMARC, Name: names.DMARC, Type: "TXT"},
	)
	if o.inbound {
		exps = append(exps, dnscheck.Expectation{Key: domain.KeyInboundMX, Name: names.Inbound, Type: "MX", Value: o.inboundMX, Priority: domain.MXPriority})
	}
	for i := range exps {
		exps[i].Domain = name
	}
	return exps
}

// spfValue returns the SPF record the records package generates for include, or
// "" (any valid SPF record) when include is empty.
func spfValue(include string) string {
	if include == "" {
		return ""
	}
	return records.SPFValue(include)
}

func toCheckRecord(e dnscheck.Expectation, o domain.Observation) checkRecord {
	r := checkRecord{Key: e.Key.Role(), Name: e.Name, Type: e.Type, CheckView: domain.ViewCheck(o)}
	if e.Value != "" {
		v := e.Value
		r.Expected = &v
	}
	return r
}

// checkExit returns the exit status for the records: 1 when DNS definitely lacks
// or contradicts one, else 2 when some could not be checked, else 0. Warnings on a
// verified record do not count.
func checkExit(recs []checkRecord) int {
	code := 0
	for _, r := range recs {
		switch domain.CheckStatus(r.Status) {
		case domain.CheckVerified:
		case domain.CheckMissing, domain.CheckMismatch:
			return 1
		default:
			code = 2
		}
	}
	return code
}

// printCheck writes the human-readable report: a table of the records; then, for
// each record with problems or whose servers disagree, the fixes and one line per
// server asked; then a summary.
// Everything that came from DNS is quoted or cleaned, since a zone's owner
// controls it and a terminal would obey control characters in it.
func printCheck(w io.Writer, out checkOutput, ownershipSkipped bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORD\tNAME\tTYPE\tSTATUS\tFOUND")
	for _, r := range out.Records {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Key, r.Name, r.Type, r.Status, foundList(r.Found))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if ownershipSkipped {
		fmt.Fprintln(w, "(ownership not checked: give --ownership-token to check it)")
	}
	bad, unchecked := 0, 0
	for _, r := range out.Records {
		switch domain.CheckStatus(r.Status) {
		case domain.CheckVerified:
		case domain.CheckMissing, domain.CheckMismatch:
			bad++
		default:
			unchecked++
		}
		if len(r.Problems) == 0 && !serversDisagree(r) {
			continue // the table row says it all
		}
		fmt.Fprintf(w, "\n%s %s: %s\n", r.Key, r.Name, r.Status)
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  %s: %s\n", p.Code, domain.Printable(p.Message))
		}
		for _, s := range r.Propagation {
			line := "  " + string(s.Role) + " " + domain.Printable(s.Server)
			if s.Zone != "" {
				line += " (" + domain.Printable(s.Zone) + ")"
			}
			line += ": " + string(s.Status)
			if len(s.Values) > 0 {
				line += " " + foundList(s.Values)
			}
			if s.Error != "" {
				line += " (" + domain.Printable(s.Error) + ")"
			}
			fmt.Fprintln(w, line)
		}
	}
	n := len(out.Records)
	switch {
	case bad > 0:
		fmt.Fprintf(w, "\n%s: %d of %d records missing or wrong.\n", out.Domain, bad, n)
	case unchecked > 0:
		fmt.Fprintf(w, "\n%s: %d of %d records could not be checked; DNS did not answer, try again.\n", out.Domain, unchecked, n)
	default:
		fmt.Fprintf(w, "\n%s: all %d records verified.\n", out.Domain, n)
	}
	return nil
}

// serversDisagree reports whether some server saw the record otherwise than the
// verdict, as while a change propagates.
func serversDisagree(r checkRecord) bool {
	for _, s := range r.Propagation {
		if string(s.Status) != r.Status {
			return true
		}
	}
	return false
}

// foundList quotes each value, shortened, for one table cell; "-" when none.
func foundList(vs []string) string {
	if len(vs) == 0 {
		return "-"
	}
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(domain.Truncate(v, 40))
	}
	return strings.Join(q, ", ")
}
