package verify

// Joins returns how many calls found a check of their domain running and
// waited for it.
func Joins(v *Verifier) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.joins
}
