package probe

import "fmt"

// State is a check's verdict.
type State int

const (
	// Unknown is the state before the first verdict. It counts as not passing: a node is
	// not eligible for a VIP until its checks have succeeded (successThreshold times).
	Unknown State = iota
	// Passing means Rise successes in a row, and not Fall failures in a row since.
	Passing
	// Failing means Fall failures in a row (one, for an Unknown check), and not Rise successes
	// in a row since.
	Failing
)

func (s State) String() string {
	return [...]string{"Unknown", "Passing", "Failing"}[s]
}

// Hysteresis turns probe results into a verdict the way keepalived's fall and rise do: a
// passing check fails on exactly the Fall-th failure in a row, a failing (or unknown) one
// passes on exactly the Rise-th success in a row. An unknown check fails on its first
// failure: there is no earlier verdict to hold on to.
type Hysteresis struct {
	Fall, Rise int

	State  State
	streak int // results in a row that disagree with State
}

// Observe records one result and reports whether the state changed, with the reason.
func (h *Hysteresis) Observe(probe string, err error) (changed bool, reason string) {
	ok := err == nil
	switch {
	case h.State == Unknown && !ok:
		h.State, h.streak = Failing, 0
		return true, fmt.Sprintf("%s: %v", probe, err)
	case (h.State == Passing) == ok:
		h.streak = 0 // agrees with the verdict
		return false, ""
	}
	h.streak++
	if ok && h.streak >= h.Rise {
		h.State, h.streak = Passing, 0
		return true, fmt.Sprintf("%s: succeeded (%s)", probe, inARow(h.Rise))
	}
	if !ok && h.streak >= h.Fall {
		h.State, h.streak = Failing, 0
		return true, fmt.Sprintf("%s: %v (%s)", probe, err, inARow(h.Fall))
	}
	return false, ""
}

func inARow(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d in a row", n)
}
