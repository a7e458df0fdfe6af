package dashboard

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/domains"
)

// badge is a status as the pages show it: a word and a symbol, so that colour is
// never the only sign.
type badge struct {
	State string // the machine name, also the CSS class and data-state
	Icon  string
	Label string
}

// stateBadges are the badges of the domain states (see domain.Domain.State).
var stateBadges = map[domain.State]badge{
	domain.StateVerified:             {string(domain.StateVerified), "✓", "Verified"},
	domain.StatePending:              {string(domain.StatePending), "…", "Pending"},
	domain.StatePendingConfiguration: {string(domain.StatePendingConfiguration), "○", "Pending configuration"},
	domain.StateDegrading:            {string(domain.StateDegrading), "↓", "Degrading"},
	domain.StateFailed:               {string(domain.StateFailed), "✗", "Failed"},
}

// stateBadge returns the badge of a domain state.
func stateBadge(s domain.State) badge {
	if b, ok := stateBadges[s]; ok {
		return b
	}
	return badge{"unknown", "?", string(s)}
}

// badgeFor returns the badge of a record's check status, as a record, a server's
// answer or an event names it; an event's record never checked has the status
// "", shown as unchecked (see domain.Record.ShownStatus).
func badgeFor(status domain.CheckStatus) badge {
	switch status {
	case domain.CheckVerified:
		return badge{string(status), "✓", "Verified"}
	case domain.CheckMissing:
		return badge{string(status), "✗", "Missing"}
	case domain.CheckMismatch:
		return badge{string(status), "≠", "Mismatch"}
	case domain.CheckTemporaryFailure:
		return badge{string(status), "⚠", "Temporary failure"}
	case "", domain.CheckUnchecked:
		return badge{string(domain.CheckUnchecked), "○", "Not checked yet"}
	}
	return badge{"unknown", "?", string(status)}
}

// stamp is a time as the pages show it.
type stamp struct{ t time.Time }

// IsZero reports whether the time is unset.
func (s stamp) IsZero() bool { return s.t.IsZero() }

// ISO is the machine-readable form, for the datetime attribute.
func (s stamp) ISO() string { return s.t.UTC().Format(time.RFC3339) }

// Human is the form people read.
func (s stamp) Human() string { return s.t.UTC().Format("2 Jan 2006 15:04 UTC") }

// domainView is a domain as the pages show it.
type domainView struct {
	ID, Name, Region string
	Badge            badge
	CreatedAt        stamp
	LastChecked      stamp // zero until the first check
	VerifiedAt       stamp
	InProgress       bool
	FailureReason    string
	Records          []recordView

	// CanEnableReceiving reports whether receiving may be switched on: the
	// domain is verified, as domains.Service.EnableInbound requires.
	CanEnableReceiving bool
	// CanReceive reports whether the domain receives mail: its inbound MX is
	// verified, as v2's canReceive says.
	CanReceive bool
	// Receiving reports whether receiving is on, that is whether the domain
	// has an inbound MX record to publish.
	Receiving         bool
	InboundVerifiedAt stamp // zero until the inbound MX is seen
}

// recordView is one record as the domain page shows it.
type recordView struct {
	Role, Label, Need                    string
	Name, Type, Priority, Value, Purpose string
	Badge                                badge
	Apex                                 bool // named the domain itself
	Checked                              bool
	CheckedAt                            stamp
	Found                                []string
	Problems                             []domain.Problem
	Propagation                          []sightingView
}

// sightingView is what one DNS server said of a record.
type sightingView struct {
	Server, Role, Zone string
	Badge              badge
	Values             []string
	Error              string
}

func recordLabel(k domain.RecordKey) string {
	switch k {
	case domain.KeyOwnership:
		return "Ownership"
	case domain.KeyDKIM:
		return "DKIM"
	case domain.KeyMailFromMX:
		return "MAIL FROM MX"
	case domain.KeyMailFromSPF:
		return "MAIL FROM SPF"
	case domain.KeyDMARC:
		return "DMARC"
	case domain.KeyInboundMX:
		return "Inbound MX"
	case domain.KeyDKIMNext:
		return "DKIM (next key)"
	case domain.KeyDKIMPrevious:
		return "DKIM (previous key)"
	case domain.KeyDKIM2:
		return "DKIM (second selector)"
	}
	return string(k)
}

func toDomainView(d *domain.Domain, inProgress bool) *domainView {
	v := &domainView{
		ID: d.ID, Name: d.Name, Region: d.Region,
		Badge:      stateBadge(d.State()),
		CreatedAt:  stamp{d.CreatedAt},
		VerifiedAt: stamp{d.VerifiedAt},
		InProgress: inProgress,
		CanReceive: d.CanReceive(),
		Receiving:  d.Receiving(),

		CanEnableReceiving: d.MayEnableInbound(),
		FailureReason:      d.FailureReason("press Verify now"),

		InboundVerifiedAt: stamp{d.InboundVerifiedAt},
	}
	if d.EverChecked() {
		v.LastChecked = stamp{d.LastCheckedAt}
	}
	for i := range d.Records {
		rv := toRecordView(&d.Records[i])
		rv.Apex = d.Records[i].Name == d.Name
		v.Records = append(v.Records, rv)
	}
	return v
}

func toRecordView(r *domain.Record) recordView {
	v := recordView{
		Role: r.Key.Role(), Label: recordLabel(r.Key), Need: string(r.Need()),
		Name: r.Name, Type: r.Type, Value: r.Value, Purpose: r.Purpose,
		Badge:     badgeFor(r.ShownStatus()),
		Checked:   !r.CheckedAt.IsZero(),
		CheckedAt: stamp{r.CheckedAt},
		Found:     printable(r.Found),
		Problems:  r.Problems,
	}
	if p, ok := r.ShownPriority(); ok {
		v.Priority = strconv.Itoa(int(p))
	}
	for _, s := range r.Propagation {
		v.Propagation = append(v.Propagation, sightingView{
			Server: s.Server, Role: string(s.Role), Zone: s.Zone,
			Badge: badgeFor(s.Status), Values: printable(s.Values), Error: domain.Printable(s.Error),
		})
	}
	return v
}

// printable shows values found in DNS, written by whoever controls the zone, with
// control and bidirectional characters made visible (domain.Printable); the
// template's escaping alone would still let them reorder or hide text.
func printable(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = domain.Printable(v)
	}
	return out
}

// eventView is one event in the domain's history.
type eventView struct {
	At     stamp
	Label  string
	Detail string
}

func toEventView(e domains.Event) eventView {
	v := eventView{At: stamp{e.CreatedAt}, Label: string(e.Type)}
	var p domain.EventPayload
	// A payload that does not decode still shows its type and time.
	_ = json.Unmarshal(e.Payload, &p)
	switch e.Type {
	case domain.EventVerified:
		v.Label = "Verified"
		v.Detail = "The domain can send mail."
	case domain.EventDegraded:
		v.Label = "Degraded"
		v.Detail = p.Data.Reason
	case domain.EventFailed:
		v.Label = "Automatic checks gave up"
		v.Detail = p.Data.Reason
	case domain.EventRecordChanged:
		v.Label = "Record changed"
		if len(p.Data.Records) > 0 {
			rec := p.Data.Records[0]
			v.Detail = rec.Type + " (" + rec.Name + ") is now " + badgeFor(rec.Status).Label + "."
		}
	case domain.EventStatusChanged:
		v.Label = "Status changed"
		if p.Data.PreviousStatus != "" {
			v.Detail = "From " + p.Data.PreviousStatus + " to " + p.Data.VerificationStatus + "."
		}
	}
	return v
}
