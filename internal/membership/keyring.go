package membership

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// KeyPollInterval is how often a member reads the key Secret to follow a rotation. Each
// step of a rotation waits until every member has read it (docs/operations.md), so this
// bounds how long a step takes; the read is served from the API server's watch cache.
const KeyPollInterval = 5 * time.Second

// keyringChange is what turns one keyring into another: keys to add, the new primary (nil
// when it stays), keys to remove. Adding comes first and removing last, so that the
// primary is always installed and never removed.
type keyringChange struct {
	add    [][]byte
	use    []byte
	remove [][]byte
	// blindSwitch: the new primary was not installed before. Members that have not read
	// the Secret yet cannot decrypt what this member now sends: the rotation skipped its
	// first step.
	blindSwitch bool
}

func (c keyringChange) empty() bool {
	return len(c.add) == 0 && c.use == nil && len(c.remove) == 0
}

// planKeyring compares the installed keyring with the wanted one (both primary first).
func planKeyring(have, want [][]byte) keyringChange {
	var c keyringChange
	for _, k := range want {
		if !containsKey(have, k) {
			c.add = append(c.add, k)
		}
	}
	if len(want) > 0 && (len(have) == 0 || !bytes.Equal(have[0], want[0])) {
		c.use = want[0]
		c.blindSwitch = len(have) > 0 && !containsKey(have, want[0])
	}
	for _, k := range have {
		if !containsKey(want, k) {
			c.remove = append(c.remove, k)
		}
	}
	return c
}

func containsKey(keys [][]byte, key []byte) bool {
	return slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, key) })
}

// Keys returns the member's keyring, primary first.
func (m *Member) Keys() [][]byte {
	// memberlist's GetKeys returns its own slice, which RemoveKey later shifts in place.
	return slices.Clone(m.keyring.GetKeys())
}

// SetKeys makes the member's keyring want (primary first): new keys are added, the primary
// switched, dropped keys removed. It reports whether anything changed.
func (m *Member) SetKeys(want [][]byte) (bool, error) {
	if len(want) == 0 {
		return false, errNoKeys
	}
	have := m.Keys()
	c := planKeyring(have, want)
	if c.empty() {
		return false, nil
	}
	for _, k := range c.add {
		if err := m.keyring.AddKey(k); err != nil {
			return false, fmt.Errorf("adding memberlist key %s: %w", Fingerprint(k), err)
		}
	}
	if c.use != nil {
		if err := m.keyring.UseKey(c.use); err != nil {
			return true, fmt.Errorf("making memberlist key %s primary: %w", Fingerprint(c.use), err)
		}
	}
	for _, k := range c.remove {
		if err := m.keyring.RemoveKey(k); err != nil {
			return true, fmt.Errorf("removing memberlist key %s: %w", Fingerprint(k), err)
		}
	}
	m.metrics.setKeys(want)
	m.log.Info("memberlist keyring changed", "primary", Fingerprint(want[0]), "keys", fingerprints(want),
		"added", fingerprints(c.add), "removed", fingerprints(c.remove))
	if c.blindSwitch {
		m.log.Error(nil, "the memberlist primary key changed to a key this member did not have: members that have not read the Secret yet "+
			"cannot decrypt this member's messages until they do; add a new key as second first, then make it primary (docs/operations.md)",
			"primary", Fingerprint(want[0]))
	}
	return true, nil
}

// FollowKeys keeps the keyring equal to what read returns, reading every interval until ctx
// is done. A failed read (API server down, Secret deleted or mistyped) keeps the keyring
// as it is: the members keep understanding each other.
func (m *Member) FollowKeys(ctx context.Context, every time.Duration, read func(context.Context) ([][]byte, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		keys, err := read(ctx)
		if err == nil {
			_, err = m.SetKeys(keys)
		}
		switch {
		case err != nil && err.Error() != lastErr:
			m.log.Error(err, "cannot follow the memberlist keys; keeping the current ones", "keys", fingerprints(m.Keys()))
			lastErr = err.Error()
		case err == nil && lastErr != "":
			m.log.Info("following the memberlist keys again")
			lastErr = ""
		}
	}
}

// KeyReader reads the keyring for FollowKeys through c (an uncached reader: the members'
// RBAC allows `get` on that one Secret only), served from the API server's watch cache.
func KeyReader(c client.Reader, namespace string) func(context.Context) ([][]byte, error) {
	cached := &client.GetOptions{Raw: &metav1.GetOptions{ResourceVersion: "0"}}
	return func(ctx context.Context) ([][]byte, error) {
		return ReadKeys(ctx, c, namespace, cached)
	}
}
