package membership

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

func TestPlanKeyring(t *testing.T) {
	a, b, c := key('a', 32), key('b', 32), key('c', 32)
	type keys = [][]byte
	for _, tc := range []struct {
		name        string
		have, want  keys
		add, remove keys
		use         []byte
		blind       bool
	}{
		{name: "same", have: keys{a}, want: keys{a}},
		{name: "same, secondaries reordered", have: keys{a, b, c}, want: keys{a, c, b}},
		{name: "step 1: add the new key second", have: keys{a}, want: keys{a, b}, add: keys{b}},
		{name: "step 2: make it primary", have: keys{a, b}, want: keys{b, a}, use: b},
		{name: "step 3: remove the old one", have: keys{b, a}, want: keys{b}, remove: keys{a}},
		{name: "a member that missed step 2 catches up in one read", have: keys{a, b}, want: keys{b}, use: b, remove: keys{a}},
		{name: "a member that missed step 1 switches blind", have: keys{a}, want: keys{b, a}, add: keys{b}, use: b, blind: true},
		{name: "replaced in one step", have: keys{a}, want: keys{c}, add: keys{c}, use: c, remove: keys{a}, blind: true},
		{name: "first keyring", have: nil, want: keys{a, b}, add: keys{a, b}, use: a},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := planKeyring(tc.have, tc.want)
			if !equalKeys(got.add, tc.add) || !equalKeys(got.remove, tc.remove) || !equalKeys([][]byte{got.use}, [][]byte{tc.use}) || got.blindSwitch != tc.blind {
				t.Errorf("plan: add %v, use %v, remove %v, blind %v; want add %v, use %v, remove %v, blind %v",
					fingerprints(got.add), fingerprints([][]byte{got.use}), fingerprints(got.remove), got.blindSwitch,
					fingerprints(tc.add), fingerprints([][]byte{tc.use}), fingerprints(tc.remove), tc.blind)
			}
		})
	}
}

// newTestMember is a Member with a keyring and metrics but no running memberlist: SetKeys
// and FollowKeys only touch the keyring.
func newTestMember(t *testing.T, keys ...[]byte) *Member {
	t.Helper()
	kr, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	metrics := NewMetrics()
	metrics.setKeys(keys)
	return &Member{log: logr.Discard(), states: map[string]State{}, metrics: metrics, keyring: kr}
}

// keyMetric lists the vigil_memberlist_keys series as "fingerprint[ primary]", sorted.
func keyMetric(t *testing.T, m *Metrics) []string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.keys)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			var fp, primary string
			for _, l := range s.GetLabel() {
				switch l.GetName() {
				case "fingerprint":
					fp = l.GetValue()
				case "primary":
					primary = l.GetValue()
				}
			}
			if primary == "true" {
				fp += " primary"
			}
			if s.GetGauge().GetValue() == 1 {
				out = append(out, fp)
			}
		}
	}
	slices.Sort(out)
	return out
}

// The documented rotation, step by step, on memberlist's real keyring: the primary is
// always installed, and the metric shows each step.
func TestSetKeysFollowsARotation(t *testing.T) {
	old, next := key('o', 32), key('n', 32)
	m := newTestMember(t, old)
	o, n := Fingerprint(old), Fingerprint(next)
	for i, step := range []struct {
		want    [][]byte
		changed bool
		metric  []string
	}{
		{[][]byte{old}, false, []string{o + " primary"}},
		{[][]byte{old, next}, true, []string{n, o + " primary"}},
		{[][]byte{next, old}, true, []string{n + " primary", o}},
		{[][]byte{next}, true, []string{n + " primary"}},
	} {
		changed, err := m.SetKeys(step.want)
		if err != nil || changed != step.changed {
			t.Fatalf("step %d: changed %v, %v; want %v", i, changed, err, step.changed)
		}
		if got := m.Keys(); !equalKeys(got, step.want) {
			t.Fatalf("step %d: keyring %v, want %v", i, fingerprints(got), fingerprints(step.want))
		}
		if got, want := keyMetric(t, m.metrics), slices.Sorted(slices.Values(step.metric)); !slices.Equal(got, want) {
			t.Errorf("step %d: vigil_memberlist_keys %v, want %v", i, got, want)
		}
	}
	if _, err := m.SetKeys(nil); !errors.Is(err, errNoKeys) {
		t.Errorf("SetKeys(nil) = %v, want %v", err, errNoKeys)
	}
}

// FollowKeys applies what it reads, and keeps the keyring through failed reads.
func TestFollowKeysKeepsTheKeyringThroughFailedReads(t *testing.T) {
	old, next := key('o', 32), key('n', 32)
	m := newTestMember(t, old)
	var mu sync.Mutex
	answers := []struct {
		keys [][]byte
		err  error
	}{{nil, errors.New("API server down")}, {[][]byte{old, next}, nil}, {nil, errors.New("secret deleted")}, {[][]byte{next}, nil}}
	reads := 0
	read := func(context.Context) ([][]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		a := answers[min(reads, len(answers)-1)]
		reads++
		return a.keys, a.err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.FollowKeys(ctx, time.Millisecond, read); close(done) }()
	seen := map[string]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for !equalKeys(m.Keys(), [][]byte{next}) && time.Now().Before(deadline) {
		seen[strings.Join(fingerprints(m.Keys()), ",")] = true
		time.Sleep(100 * time.Microsecond)
	}
	cancel()
	<-done
	if got := m.Keys(); !equalKeys(got, [][]byte{next}) {
		t.Fatalf("keyring %v after following, want %v", fingerprints(got), fingerprints([][]byte{next}))
	}
	for s := range seen {
		if s == "" {
			t.Errorf("the keyring was empty at some point")
		}
	}
}

func TestAdvertiseAddr(t *testing.T) {
	for _, tc := range []struct{ flag, bindHost, fallback, want string }{
		{"", "", "198.18.0.11", "198.18.0.11"},
		{"", "0.0.0.0", "198.18.0.11", "198.18.0.11"},
		{"", "::", "", ""},
		{"", "198.18.0.12", "198.18.0.11", "198.18.0.12"},
		{"", "fd00::12", "198.18.0.11", "fd00::12"},
		{"198.18.0.13", "198.18.0.12", "198.18.0.11", "198.18.0.13"},
	} {
		if got := advertiseAddr(tc.flag, tc.bindHost, tc.fallback); got != tc.want {
			t.Errorf("advertiseAddr(%q, %q, %q) = %q, want %q", tc.flag, tc.bindHost, tc.fallback, got, tc.want)
		}
	}
}
