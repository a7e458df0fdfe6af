package api

import "testing"

func TestDuplicateName(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"a":1,"b":2}`, ""},
		{`{"a":1,"a":2}`, "a"},
		{`{"a":{"a":1}}`, ""}, // one name in two objects is fine
		{`{"a":[{"b":1},{"b":2}],"c":3}`, ""},
		{`{"a":[{"b":1,"b":2}]}`, "b"},
		{`{"a":{"x":1},"a":2}`, "a"},
		{`{"regionKey":1,"REGIONKEY":2}`, "REGIONKEY"},
		{"{\"k\":1,\"\u212a\":2}", "\u212a"}, // the Kelvin sign folds to k
		{"{\"s\":1,\"\u017f\":2}", "\u017f"}, // so does the long s to s
		{`[1,2,"a","a"]`, ""},
		{`{"a":"a","b":"a"}`, ""},
		{`{"a":`, ""}, // invalid JSON is left to the decoder to report
		{`"a"`, ""},
	} {
		if got := duplicateName([]byte(tc.body)); got != tc.want {
			t.Errorf("duplicateName(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

func FuzzDuplicateName(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,{"c":2}]},"a":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		duplicateName(b) // must not panic, whatever the nesting
	})
}
