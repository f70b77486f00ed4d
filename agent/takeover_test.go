package agent

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
)

func TestTakeoverDuringAnAPIOutage(t *testing.T) {
	fence := 5 * time.Second
	vip := func(name, owner string, standbys ...string) vigilv1.VirtualIP {
		return vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: vigilv1.VirtualIPStatus{Owner: owner, Standbys: standbys}}
	}
	deadSince := func(d time.Duration) membership.State { return membership.State{Alive: false, Since: t0.Add(-d)} }
	alive := membership.State{Alive: true}
	cases := []struct {
		name     string
		node     string
		vips     []vigilv1.VirtualIP
		members  map[string]membership.State
		majority bool
		take     []string
		again    time.Duration
	}{
		{"first standby takes it after fence-after", "b", []vigilv1.VirtualIP{vip("web", "a", "b", "c")},
			map[string]membership.State{"a": deadSince(6 * time.Second), "b": alive, "c": alive}, true, []string{"web"}, 0},
		{"not before fence-after: look again then", "b", []vigilv1.VirtualIP{vip("web", "a", "b", "c")},
			map[string]membership.State{"a": deadSince(2 * time.Second), "b": alive, "c": alive}, true, nil, 3 * time.Second},
		{"the second standby waits for the first", "c", []vigilv1.VirtualIP{vip("web", "a", "b", "c")},
			map[string]membership.State{"a": deadSince(6 * time.Second), "b": alive, "c": alive}, true, nil, 0},
		{"the second standby takes it if the first is dead too", "c", []vigilv1.VirtualIP{vip("web", "a", "b", "c")},
			map[string]membership.State{"a": deadSince(6 * time.Second), "b": deadSince(6 * time.Second), "c": alive}, true, []string{"web"}, 0},
		{"the second standby waits until the first has been dead for fence-after too", "c", []vigilv1.VirtualIP{vip("web", "a", "b", "c")},
			map[string]membership.State{"a": deadSince(6 * time.Second), "b": deadSince(30 * time.Millisecond), "c": alive}, true, nil, fence - 30*time.Millisecond},
		{"a standby unknown to memberlist does not hold the next one back", "c", []vigilv1.VirtualIP{vip("web", "a", "b", "c")},
			map[string]membership.State{"a": deadSince(6 * time.Second), "c": alive}, true, []string{"web"}, 0},
		{"not a standby: nothing", "d", []vigilv1.VirtualIP{vip("web", "a", "b", "c")},
			map[string]membership.State{"a": deadSince(6 * time.Second), "b": deadSince(6 * time.Second), "c": deadSince(6 * time.Second), "d": alive}, true, nil, 0},
		{"no majority: never", "b", []vigilv1.VirtualIP{vip("web", "a", "b")},
			map[string]membership.State{"a": deadSince(time.Minute), "b": alive}, false, nil, 0},
		{"owner alive: nothing", "b", []vigilv1.VirtualIP{vip("web", "a", "b")},
			map[string]membership.State{"a": alive, "b": alive}, true, nil, 0},
		{"owner unknown to memberlist: nothing", "b", []vigilv1.VirtualIP{vip("web", "a", "b")},
			map[string]membership.State{"b": alive}, true, nil, 0},
	}
	for _, tc := range cases {
		take, again := Takeover(tc.node, tc.vips, tc.members, tc.majority, fence, t0)
		if !slices.Equal(take, tc.take) || again != tc.again {
			t.Errorf("%s: take %v again %v, want %v %v", tc.name, take, again, tc.take, tc.again)
		}
	}
}
