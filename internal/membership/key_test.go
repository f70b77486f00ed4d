package membership

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func key(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

func TestParseKeys(t *testing.T) {
	a, b, c := key('a', 32), key('b', 16), key('c', 24)
	for _, tc := range []struct {
		name string
		data map[string][]byte
		want [][]byte
		err  string
	}{
		{"one key", map[string][]byte{"keys": []byte(b64(a) + "\n")}, [][]byte{a}, ""},
		{"primary first, blank lines and spaces ignored", map[string][]byte{"keys": []byte("\n " + b64(b) + " \n\n" + b64(a) + "\r\n" + b64(c))}, [][]byte{b, a, c}, ""},
		{"legacy raw key", map[string][]byte{"key": a}, [][]byte{a}, ""},
		{"keys wins over the legacy key", map[string][]byte{"keys": []byte(b64(b)), "key": a}, [][]byte{b}, ""},
		{"neither", map[string][]byte{"other": a}, nil, `no "keys" (nor the older "key")`},
		{"empty keyring", map[string][]byte{"keys": []byte("\n\n")}, nil, `"keys" holds no key`},
		{"not base64", map[string][]byte{"keys": []byte(b64(a) + "\nnot base64!")}, nil, `"keys" line 2 is not base64`},
		{"wrong size", map[string][]byte{"keys": []byte(b64(key('x', 20)))}, nil, `"keys" line 1: a key must be 16, 24 or 32 bytes, not 20`},
		{"legacy wrong size", map[string][]byte{"key": key('x', 31)}, nil, `"key": a key must be 16, 24 or 32 bytes, not 31`},
		{"repeated key", map[string][]byte{"keys": []byte(b64(a) + "\n" + b64(b) + "\n" + b64(a))}, nil, `"keys" line 3 repeats key ` + Fingerprint(a)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKeys(tc.data)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalKeys(got, tc.want) {
				t.Errorf("keys %v, want %v", fingerprints(got), fingerprints(tc.want))
			}
		})
	}
}

func TestFormatKeysRoundTrips(t *testing.T) {
	keys := [][]byte{key('a', 32), key('b', 16)}
	got, err := ParseKeys(map[string][]byte{"keys": FormatKeys(keys)})
	if err != nil || !equalKeys(got, keys) {
		t.Fatalf("ParseKeys(FormatKeys(keys)) = %v, %v", fingerprints(got), err)
	}
	if want := b64(keys[0]) + "\n" + b64(keys[1]) + "\n"; string(FormatKeys(keys)) != want {
		t.Errorf("FormatKeys = %q, want %q", FormatKeys(keys), want)
	}
}

// The fingerprint is what the documented `base64 -d < new | sha256sum | cut -c1-8` prints:
// for this raw key, `printf %s 0123456789abcdef | sha256sum | cut -c1-8`.
func TestFingerprint(t *testing.T) {
	if got, want := Fingerprint([]byte("0123456789abcdef")), "9f9f5111"; got != want {
		t.Errorf("Fingerprint = %s, want %s", got, want)
	}
}

func TestNewKeyIsAES256(t *testing.T) {
	a, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewKey()
	if len(a) != 32 || bytes.Equal(a, b) {
		t.Errorf("NewKey: %d bytes, repeated: %v", len(a), bytes.Equal(a, b))
	}
}

func equalKeys(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
