package controllers

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/test/fuzzrand"
)

// FuzzElect feeds the election random candidates and statuses and checks what must hold
// whatever the input: it is deterministic; the owner is a live candidate matching the
// selector, or nobody; the standbys are distinct eligible candidates other than the owner,
// at most MaxStandbys; a Degraded decision has an owner; and while an eligible live
// candidate exists, the VIP is not left without owner.
func FuzzElect(f *testing.F) {
	fuzzrand.Fuzz(f, []uint64{1, 7, 99, 1 << 33}, func(t *testing.T, r *rand.Rand) {
		in := randomElection(r)
		d := Elect(in)
		if fmt.Sprint(Elect(in)) != fmt.Sprint(d) {
			t.Fatal("not deterministic")
		}
		byName := map[string]Candidate{}
		eligibleExists := false
		for _, c := range in.Candidates {
			byName[c.Node] = c
			if c.Alive && c.Reported && c.Eligible && !c.Draining {
				eligibleExists = true
			}
		}
		if d.Owner != "" && !byName[d.Owner].Alive {
			t.Fatalf("owner %s is not a live candidate: %+v", d.Owner, byName[d.Owner])
		}
		if d.Degraded && d.Owner == "" {
			t.Fatal("degraded without owner")
		}
		if len(d.Standbys) > vigilv1.MaxStandbys || slices.Contains(d.Standbys, d.Owner) {
			t.Fatalf("standbys %v (owner %s)", d.Standbys, d.Owner)
		}
		seen := map[string]bool{}
		for _, s := range d.Standbys {
			c := byName[s]
			if seen[s] || !c.Alive || !c.Eligible || c.Draining {
				t.Fatalf("standby %s is a duplicate or not eligible: %+v", s, c)
			}
			seen[s] = true
		}
		if eligibleExists && d.Owner == "" && d.RequeueAfter == 0 {
			t.Fatalf("no owner though an eligible candidate exists: %+v", d)
		}
	})
}

// randomElection builds an election from r: up to 5 candidates (eligible, failing their
// checks, dead, draining or not reported) with how many VIPs each owns, and a VirtualIP
// whose owner may be nobody or no candidate, sometimes with priorities and a preemption
// delay.
func randomElection(r *rand.Rand) ElectionInput {
	names := []string{"a", "b", "c", "d", "e"}
	var cs []Candidate
	owned := map[string]int{}
	for _, n := range names[:r.IntN(len(names)+1)] {
		c := node(n + []string{"", "!", "-", "~", "?"}[r.IntN(5)])
		c.Since = t0.Add(-time.Duration(r.IntN(120)) * time.Second)
		if r.IntN(5) == 0 {
			c.BoundEpoch = int64(r.IntN(4))
		}
		cs = append(cs, c)
		owned[n] = r.IntN(3)
	}
	owner := []string{"", "a", "b", "z"}[r.IntN(4)]
	vip := vipWith(owner)
	vip.Status.Epoch = int64(r.IntN(4))
	vip.CreationTimestamp.Time = t0.Add(-time.Duration(r.IntN(5)) * time.Second)
	if r.IntN(2) == 0 {
		vip = vipWith(owner, prefer(names[r.IntN(5)], int32(1+r.IntN(255))), preemptAfter(time.Duration(r.IntN(60))*time.Second))
		vip.Status.Epoch = int64(r.IntN(4))
	}
	return ElectionInput{VIP: vip, Candidates: cs, Owned: owned, Now: t0}
}
