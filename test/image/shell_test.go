package image_test

import (
	"errors"
	"strings"
)

var errUnterminated = errors.New("unterminated quote")

// readDoubleQuoted copies the inside of a "..." string (s starts after the opening quote)
// into word, handling \" \\ \$ and \`, and returns how many bytes of s it consumed,
// closing quote included.
func readDoubleQuoted(s string, word *strings.Builder) (int, error) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0:
			i++
			word.WriteByte(s[i])
		default:
			word.WriteByte(c)
		}
	}
	return 0, errUnterminated
}
