package membership

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SecretName is the Secret holding the gossip encryption keys, in Vigil's namespace.
const SecretName = "vigil-memberlist"

const (
	// keysField holds the keyring: one base64 key per line, the first the primary (the one
	// that encrypts; every key decrypts). Keys are rotated by editing it in steps
	// (docs/operations.md), so that members never stop understanding each other.
	keysField = "keys"
	// legacyKeyField holds the single raw key Vigil wrote before keyrings; still read when
	// keysField is absent, so an upgrade keeps its key.
	legacyKeyField = "key"
)

// ParseKeys reads the keyring from a Secret's data: keysField when present, else the
// legacy single key. The first key is the primary.
func ParseKeys(data map[string][]byte) ([][]byte, error) {
	text, ok := data[keysField]
	if !ok {
		legacy, ok := data[legacyKeyField]
		if !ok {
			return nil, fmt.Errorf("no %q (nor the older %q) in the Secret", keysField, legacyKeyField)
		}
		if err := validKey(legacy); err != nil {
			return nil, fmt.Errorf("%q: %w", legacyKeyField, err)
		}
		return [][]byte{legacy}, nil
	}
	var keys [][]byte
	for i, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("%q line %d is not base64: %w", keysField, i+1, err)
		}
		if err := validKey(key); err != nil {
			return nil, fmt.Errorf("%q line %d: %w", keysField, i+1, err)
		}
		for _, k := range keys {
			if bytes.Equal(k, key) {
				return nil, fmt.Errorf("%q line %d repeats key %s", keysField, i+1, Fingerprint(key))
			}
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%q holds no key", keysField)
	}
	return keys, nil
}

// FormatKeys is the keysField value of a keyring, primary first.
func FormatKeys(keys [][]byte) []byte {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func validKey(key []byte) error {
	if n := len(key); n != 16 && n != 24 && n != 32 {
		return fmt.Errorf("a key must be 16, 24 or 32 bytes, not %d", n)
	}
	return nil
}

// Fingerprint names a key in logs and metrics without revealing it: the first 8 hex digits
// of its SHA-256 (`base64 -d <<<KEY | sha256sum | cut -c1-8`).
func Fingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

func fingerprints(keys [][]byte) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = Fingerprint(k)
	}
	return out
}

// NewKey returns a random 32-byte (AES-256) key.
func NewKey() ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return key, nil
}

// EnsureKeys returns the gossip keyring from the Secret, creating the Secret with one
// random key when it is absent. The controller calls it.
func EnsureKeys(ctx context.Context, c client.Client, namespace string) ([][]byte, error) {
	keys, err := ReadKeys(ctx, c, namespace)
	if err == nil || !apierrors.IsNotFound(err) {
		return keys, err
	}
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: namespace},
		Data: map[string][]byte{keysField: FormatKeys([][]byte{key})}}
	if err := c.Create(ctx, s); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return ReadKeys(ctx, c, namespace)
		}
		return nil, fmt.Errorf("creating Secret %s/%s: %w", namespace, SecretName, err)
	}
	return [][]byte{key}, nil
}

// ReadKeys reads the gossip keyring, primary first. Agents call it; members call it again
// every KeyPollInterval to follow rotations.
func ReadKeys(ctx context.Context, c client.Reader, namespace string, opts ...client.GetOption) ([][]byte, error) {
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: SecretName}, &s, opts...); err != nil {
		return nil, err
	}
	keys, err := ParseKeys(s.Data)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, SecretName, err)
	}
	return keys, nil
}

// errNoKeys is returned when a keyring would be left empty.
var errNoKeys = errors.New("a keyring needs at least one key")
