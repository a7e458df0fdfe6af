package domain

// Which records a customer must publish is asked two ways, and they have
// different answers:
//
//   - Required (RecordKey.Required): the record must verify before the
//     domain is VERIFIED and may send. Only ownership and DKIM; the status
//     rules (Apply) use this and nothing else.
//   - MustPublish (Need.MustPublish): something the customer uses waits until
//     the record is published: sending (ownership, DKIM), receiving (the inbound
//     MX, once receiving is on) and the next DKIM key: in txt mode dkim_next,
//     during a rotation; in cname mode the second selector's CNAME dkim_2,
//     which is published once with the domain and stays, so that every later
//     rotation finds it. Without it the rotation never switches and the
//     customer is reminded daily. Sending goes on meanwhile, so these are not
//     Required.
//
// The v2 API's isRequired, the zone export's comments and the dashboard all
// show MustPublish, through Need, so they cannot disagree.

// Need is why a customer publishes a record: what waits for it. Its value is
// the phrase the dashboard and the zone export show.
type Need string

// The needs of a record.
const (
	// NeedSend: the domain may send only once the record verifies.
	NeedSend Need = "required"
	// NeedReceive: mail for the domain reaches the platform only once the
	// inbound MX verifies.
	NeedReceive Need = "required to receive mail"
	// NeedRotation: the next DKIM key is reachable only through this record;
	// the rotation waits until it is published (signing goes on with the
	// current key meanwhile).
	NeedRotation Need = "required for the next key"
	// NeedUntilRetired: the key signing stopped with, kept published so that
	// mail signed with it and still in transit verifies; nothing waits for it.
	NeedUntilRetired Need = "keep until retired"
	// NeedRecommended: better delivery (MAIL FROM, DMARC) or tidiness (a
	// revoked key); nothing waits for it.
	NeedRecommended Need = "recommended"
)

// NeedOf returns why a record with key k and value must be published. Like
// PurposeOf, it follows from the record alone: a retired key, once revoked
// (RFC 6376 §3.6.1: an empty p=), is only recommended.
func NeedOf(k RecordKey, value string) Need {
	switch {
	case k.Required():
		return NeedSend
	case k == KeyInboundMX:
		return NeedReceive
	case k == KeyDKIMNext, k == KeyDKIM2:
		return NeedRotation
	case k == KeyDKIMPrevious && value != RevokedDKIMValue:
		return NeedUntilRetired
	}
	return NeedRecommended
}

// Need is NeedOf the record's key and value.
func (r *Record) Need() Need { return NeedOf(r.Key, r.Value) }

// MustPublish reports whether something the customer uses waits until a record
// with this need is published: sending, receiving or a key rotation. It is the
// v2 API's isRequired.
func (n Need) MustPublish() bool {
	return n == NeedSend || n == NeedReceive || n == NeedRotation
}

// AllKeys returns every record key a domain may have, in display order: the
// sending records, the inbound MX, then the records of a key rotation.
func AllKeys() []RecordKey {
	return append(append([]RecordKey{}, SendingKeys...), KeyInboundMX, KeyDKIMNext, KeyDKIMPrevious, KeyDKIM2)
}
