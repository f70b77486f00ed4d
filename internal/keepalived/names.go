package keepalived

import (
	"strconv"
	"strings"
)

// maxNameLength keeps VirtualIP and check names to a DNS-1123 label (63 characters): check
// names must be one, and a label-sized object name fits every tool that shows it.
const maxNameLength = 63

// label turns a keepalived name such as "VI_1" into a DNS-1123 label such as "vi-1": lower
// case, every run of other characters a single '-', at most 63 characters. fallback is used
// when nothing is left.
func label(name, fallback string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	s := truncate(b.String(), maxNameLength)
	if s == "" {
		return fallback
	}
	return s
}

// truncate cuts a label to n characters without leaving a '-' at its end.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.TrimRight(s, "-")
}

// namer hands out unique labels.
type namer struct {
	used map[string]bool
}

func newNamer() *namer { return &namer{used: map[string]bool{}} }

// unique returns base, or base with the smallest "-N" suffix (N >= first) that is still
// free; with first > 0 the suffix is always added. The base is shortened to make room.
func (n *namer) unique(base string, first int) string {
	for i := first; ; i++ {
		name := base
		if i > 0 {
			suffix := "-" + strconv.Itoa(i)
			name = truncate(base, maxNameLength-len(suffix)) + suffix
		}
		if !n.used[name] {
			n.used[name] = true
			return name
		}
		if i == 0 {
			i = 1 // base itself is taken: go on with -2
		}
	}
}
