package dnscheck

// Problem codes. Each is stable: clients match on it. The message that goes with a
// code is built where the problem is found, because a useful fix names the record,
// the value found and the value expected.
const (
	// CodeNotFound: no record of the expected type at the name.
	CodeNotFound = "NOT_FOUND"
	// CodeWrongValue: records exist at the name, but none has the expected value.
	CodeWrongValue = "WRONG_VALUE"
	// CodeMultipleSPF: more than one SPF record at a name, an SPF permerror.
	CodeMultipleSPF = "MULTIPLE_SPF"
	// CodeSPFSyntax: the SPF record does not parse.
	CodeSPFSyntax = "SPF_SYNTAX"
	// CodeDKIMKeyMismatch: the DKIM record publishes another key.
	CodeDKIMKeyMismatch = "DKIM_KEY_MISMATCH"
	// CodeDKIMSyntax: the DKIM record does not parse.
	CodeDKIMSyntax = "DKIM_SYNTAX"
	// CodeDMARCSyntax: the DMARC record is not valid.
	CodeDMARCSyntax = "DMARC_SYNTAX"
	// CodeDMARCMultiple: more than one DMARC record at _dmarc.
	CodeDMARCMultiple = "DMARC_MULTIPLE"
	// CodeTimeout: no server answered in time; a temporary failure.
	CodeTimeout = "DNS_TIMEOUT"
	// CodeServFail: the servers answered SERVFAIL; a temporary failure.
	CodeServFail = "SERVFAIL"
	// CodeInternal: domaind could not check the record at all.
	CodeInternal = "INTERNAL"
)
