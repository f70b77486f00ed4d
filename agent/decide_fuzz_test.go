package agent

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"vigil.dev/vigil/agent/probe"
	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
	"vigil.dev/vigil/test/fuzzrand"
)

// FuzzDecide feeds Decide random worlds and memories and checks what must hold whatever
// the input: it is deterministic, it never holds one address twice, never holds a VIP
// quietly that is not bound here, never holds anything while isolated, never holds at an
// epoch older than one it has seen, and reports each VirtualIP at most once.
func FuzzDecide(f *testing.F) {
	fuzzrand.Fuzz(f, []uint64{1, 2, 3, 42, 1 << 40}, func(t *testing.T, r *rand.Rand) {
		in := randomObservation(r)
		d := Decide(in)
		checkInvariants(t, in, d)
		again := Decide(in)
		if fmt.Sprint(again.Hold, again.Forward, again.Report, again.Again, again.ReadAPI) != fmt.Sprint(d.Hold, d.Forward, d.Report, d.Again, d.ReadAPI) {
			t.Fatal("not deterministic")
		}
		reported := map[string]bool{}
		for _, r := range d.Report {
			if reported[r.Name] {
				t.Fatalf("%s reported twice", r.Name)
			}
			reported[r.Name] = true
		}
		for _, h := range d.Hold {
			v := findVIP(in.VIPs, h.Name)
			if v != nil && v.Status.Epoch < in.Memory.Fences[v.UID] && !h.Quiet {
				t.Fatalf("%s held at epoch %d, older than the %d seen", h.Name, v.Status.Epoch, in.Memory.Fences[v.UID])
			}
		}
	})
}

// randomObservation builds node a's world from r: up to 6 VirtualIPs (some sharing an
// address, some re-created under a name), owners and standbys among 4 nodes, memberlist
// states, a memory with fences, bounds, holds and takeovers.
func randomObservation(r *rand.Rand) Observation {
	nodes := []string{"a", "b", "c", "d", ""}
	pick := func() string { return nodes[r.IntN(len(nodes))] }
	in := observation()
	in.Health = map[string]probe.Health{}
	in.APIDown = time.Duration(r.IntN(4)) * time.Second
	in.Isolated, in.Fresh, in.Majority = r.IntN(4) == 0, r.IntN(2) == 0, r.IntN(3) != 0
	in.Members = members()
	for _, n := range nodes[1:4] {
		if r.IntN(3) == 0 {
			in.Members[n] = membership.State{Alive: false, Since: t0.Add(-time.Duration(r.IntN(3000)) * time.Millisecond)}
		} else {
			in.Members[n] = membership.State{Alive: true}
		}
	}
	in.Memory = mem(func(m *Memory) { m.Stale = r.IntN(4) == 0 })
	for i := range r.IntN(7) {
		v := vigilv1.VirtualIP{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("v%d", i%4), UID: types.UID(fmt.Sprintf("u%d", i))},
			Spec:       vigilv1.VirtualIPSpec{Address: fmt.Sprintf("198.18.0.%d", 100+r.IntN(3))},
			Status:     vigilv1.VirtualIPStatus{Owner: pick(), Epoch: int64(r.IntN(5)), Standbys: []string{pick(), pick()}},
		}
		if r.IntN(2) == 0 {
			v.Status.LastTransition = &vigilv1.OwnerTransition{From: pick(), To: v.Status.Owner, Reason: []string{
				vigilv1.ReasonOwnerLost, vigilv1.ReasonOwnerDraining, vigilv1.ReasonTakenOver, vigilv1.ReasonPreempted}[r.IntN(4)]}
		}
		in.VIPs = append(in.VIPs, v)
		in.Health[v.Name] = probe.Health{Eligible: r.IntN(3) != 0}
		randomMemory(r, &in.Memory, v.UID)
	}
	// The API lists a name once: keep the last of each (a re-creation replaced the first).
	seen := map[string]bool{}
	for i := len(in.VIPs) - 1; i >= 0; i-- {
		if seen[in.VIPs[i].Name] {
			in.VIPs = slices.Delete(in.VIPs, i, i+1)
			continue
		}
		seen[in.VIPs[i].Name] = true
	}
	return in
}

func randomMemory(r *rand.Rand, m *Memory, uid types.UID) {
	if r.IntN(2) == 0 {
		m.Fences[uid] = int64(r.IntN(5))
	}
	if r.IntN(2) == 0 {
		m.Bound[uid] = int64(1 + r.IntN(4))
	}
	if r.IntN(3) == 0 {
		m.Holds[uid] = Hold{Until: t0.Add(time.Duration(r.IntN(4000)-2000) * time.Millisecond), Confirmed: r.IntN(2) == 0}
	}
	if r.IntN(4) == 0 {
		m.TakenOver[uid] = int64(r.IntN(5))
	}
}
