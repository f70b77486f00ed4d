// Package chans holds the one channel idiom Vigil repeats: waking a loop without blocking.
package chans

// TrySend sends v on ch unless that would block — a wake-up already pending covers this
// one — and reports whether it sent.
func TrySend[T any](ch chan<- T, v T) bool {
	select {
	case ch <- v:
		return true
	default:
		return false
	}
}
