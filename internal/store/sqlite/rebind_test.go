package sqlite

import (
	"slices"
	"testing"
)

// TestRebind checks which statements take plain ? placeholders, and that each
// ? takes the argument its $n named.
func TestRebind(t *testing.T) {
	tests := []struct {
		query, text string
		order       []int // nil: the arguments as they come
	}{
		{`SELECT 1`, `SELECT 1`, nil},
		{`SELECT $1, $2`, `SELECT ?, ?`, nil},
		{`SELECT $2, $1, $2`, `SELECT ?, ?, ?`, []int{2, 1, 2}},
		{`UPDATE t SET a = $10 WHERE b = $1`, `UPDATE t SET a = ? WHERE b = ?`, []int{10, 1}},
		{`SELECT '$1', "$2", $1`, `SELECT '$1', "$2", ?`, nil},
		{`SELECT 'it''s $1', $1`, `SELECT 'it''s $1', ?`, nil},
		{`SELECT json_extract(x, '$.a'), $1`, `SELECT json_extract(x, '$.a'), ?`, nil},
		// Placeholders of the statement's own: left as they are.
		{`SELECT ?1, $1`, `SELECT ?1, $1`, nil},
		{`SELECT :now, $1`, `SELECT :now, $1`, nil},
		{`SELECT $0`, `SELECT $0`, nil},
		{"SELECT $2 -- the domain's\n, $1", "SELECT $2 -- the domain's\n, $1", nil},
		{`SELECT $2 /* it's */, $1`, `SELECT $2 /* it's */, $1`, nil},
		{`SELECT $2, 'open, $1`, `SELECT $2, 'open, $1`, nil},
		{`SELECT $2 - $1`, `SELECT ? - ?`, []int{2, 1}},
		{`SELECT $1a, $2`, `SELECT $1a, $2`, nil},
		{`SELECT $1,$2)`, `SELECT ?,?)`, nil},
		{`SELECT $`, `SELECT $`, nil},
		{`SELECT $99999999999999999999`, `SELECT $99999999999999999999`, nil},
	}
	for _, tt := range tests {
		st := rebind(tt.query)
		if st.text != tt.text || !slices.Equal(st.order, tt.order) {
			t.Errorf("rebind(%q) = %q, %v; want %q, %v", tt.query, st.text, st.order, tt.text, tt.order)
		}
	}

	st := rebind(`SELECT $3, $1, $3`)
	if got, err := st.args([]any{"a", "b", "c"}); err != nil || !slices.Equal(got, []any{"c", "a", "c"}) {
		t.Errorf("args = %v, %v; want [c a c]", got, err)
	}
	if _, err := st.args([]any{"a", "b"}); err == nil {
		t.Error("args with too few arguments: no error")
	}
	if _, err := st.args([]any{"a", "b", "c", "d"}); err == nil {
		t.Error("args with too many arguments: no error")
	}
}

// FuzzRebind checks that rebind never panics, and that a text it rewrites has
// one ? for each argument it orders and no $n beside them.
func FuzzRebind(f *testing.F) {
	f.Add(`SELECT $2, $1, '$3', "x$4" FROM t WHERE a = $1`)
	f.Add(`SELECT ?1, $1`)
	f.Fuzz(func(t *testing.T, query string) {
		st := rebind(query)
		if st.text == query {
			return
		}
		// Rewritten: one ? for each argument ordered (all of them, in turn,
		// where order is nil), and no $n left beside them.
		marks := 0
		var quote byte
		for i := 0; i < len(st.text); i++ {
			switch c := st.text[i]; {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '\'' || c == '"':
				quote = c
			case c == '?':
				marks++
			case c == '$' && i+1 < len(st.text) && st.text[i+1] >= '0' && st.text[i+1] <= '9':
				t.Fatalf("rebind(%q) = %q: a $n beside the ?s", query, st.text)
			}
		}
		if st.order == nil {
			if marks != st.want {
				t.Fatalf("rebind(%q) = %q with %d marks for %d arguments in turn", query, st.text, marks, st.want)
			}
			return
		}
		if marks != len(st.order) {
			t.Fatalf("rebind(%q) = %q with %d marks, order %v", query, st.text, marks, st.order)
		}
		for _, n := range st.order {
			if n < 1 || n > st.want {
				t.Fatalf("rebind(%q): order %v, want %d", query, st.order, st.want)
			}
		}
	})
}
