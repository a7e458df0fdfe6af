package domain

import "time"

// The DKIM records a rotation adds beside KeyDKIM, which is always the record
// the customer must have now (the v1 API's dnsRecords.dkim).
const (
	// KeyDKIMNext is, in txt mode, the next key's TXT record at the idle
	// selector: published by the customer before anything is signed with it.
	KeyDKIMNext RecordKey = "dkim_next"
	// KeyDKIMPrevious is, in txt mode, the key signing stopped with: it stays
	// published until the retire time, then its record is shown revoked (p=).
	KeyDKIMPrevious RecordKey = "dkim_previous"
	// KeyDKIM2 is, in cname mode, the CNAME of the selector that is not
	// signing: the customer publishes both CNAMEs once.
	KeyDKIM2 RecordKey = "dkim_2"
)

// RevokedDKIMValue is the record a retired key's selector shows in txt mode:
// RFC 6376 §3.6.1, an empty p= means the key has been revoked.
const RevokedDKIMValue = "v=DKIM1; p="

// PurposeOf is the one sentence that tells the customer what a record with key
// k, type typ and value is for. It follows from them alone, so it is not stored
// with the record: the records a rotation adds, and the DKIM record of cname
// mode, have their own; every other record has its key's.
func PurposeOf(k RecordKey, typ, value string) string {
	switch {
	case k == KeyDKIM && typ == "CNAME":
		return "Leads receivers to the DKIM key the platform publishes and rotates for you; publish it once."
	case k == KeyDKIM2:
		return "Leads receivers to the platform's next DKIM key, so keys rotate with no action on your side; publish it once."
	case k == KeyDKIMNext:
		return "The next DKIM key: publish it now; mail is signed with it only once every DNS server of your domain shows it."
	case k == KeyDKIMPrevious && value == RevokedDKIMValue:
		return "The retired DKIM key, revoked: publish this empty key in its place, or remove the record."
	case k == KeyDKIMPrevious:
		return "The DKIM key mail was signed with until the last rotation: keep it published until it is retired, so mail still in transit verifies."
	}
	return k.Purpose()
}

// DKIMMode is how a domain's DKIM keys reach DNS.
type DKIMMode string

// The DKIM modes.
const (
	// DKIMModeTXT: the customer publishes each key's TXT record.
	DKIMModeTXT DKIMMode = "txt"
	// DKIMModeCNAME: the customer publishes, once, CNAMEs from both selectors to
	// names in the operator's zone, where domaind publishes the keys itself by
	// RFC 2136 dynamic update.
	DKIMModeCNAME DKIMMode = "cname"
)

// RotationState is where a domain's DKIM key rotation stands. A rotation goes
// idle → generated → visible → switched → retiring → idle; every step is
// recorded before the next is taken, so a crash resumes from the recorded one.
type RotationState string

// The rotation states.
const (
	// RotationIdle: one key signs and no rotation runs.
	RotationIdle RotationState = "idle"
	// RotationGenerated: the next key exists at the idle selector; in cname mode
	// domaind publishes it, in txt mode the customer does. Nothing signs with it.
	RotationGenerated RotationState = "generated"
	// RotationVisible: every authoritative server answers with the next key.
	RotationVisible RotationState = "visible"
	// RotationSwitched: the next key signs; the previous one stays published
	// until the retire time, for mail signed with it still in transit.
	RotationSwitched RotationState = "switched"
	// RotationRetiring: the retire time passed and the previous key is being
	// revoked (txt) or removed (cname).
	RotationRetiring RotationState = "retiring"
)

// Rotation is a domain's DKIM key rotation state, as the API shows it: the
// stored row (store.Rotation) without the keys, made from it in one place
// (the domains service).
type Rotation struct {
	Mode  DKIMMode
	State RotationState
	// CurrentSelector signs; CurrentSince is when it started to.
	CurrentSelector string
	CurrentSince    time.Time
	// NextSelector holds the next key while a rotation runs.
	NextSelector string
	// PreviousSelector is the key signing stopped with, until it is retired.
	PreviousSelector string
	Reason           string // "scheduled" or "requested"
	StartedAt        time.Time
	PublishedAt      time.Time // cname: the next key's TXT is in the operator's zone
	VisibleAt        time.Time
	SwitchedAt       time.Time
	RetireAt         time.Time // when the previous key is retired
	RetiredAt        time.Time // of the last finished rotation
	Attempts         int       // consecutive failed DNS updates of the current step
	LastError        string
	NextStepAt       time.Time
}
