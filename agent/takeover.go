package agent

import (
	"time"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
)

// Takeover decides, during an API outage, whether this node takes a VIP whose owner died:
// the controller cannot elect while the API server is down, but an owner's death must
// still move its VIPs. It is safe because:
//
//   - only the first live standby of the last published status takes it, so at most one
//     node does;
//   - it must see a majority of the agents alive, so only one side of a partition acts;
//   - it waits fenceAfter from the owner's death: an owner that is in fact alive but cut
//     off has by then released its VIPs (it reaches neither the API nor a majority);
//   - it waits as long for every standby ahead of it: memberlist's views differ for a
//     moment (a live member marked dead, then refuted 30 ms later), and a standby ahead
//     that one member saw die for an instant is, to every other, the first live standby.
//     Waiting fenceAfter from that standby's death lets a false notice be refuted, and a
//     standby that is really cut off fence itself, before a second node binds the VIP.
//
// When the API server returns the controller elects as usual, normally the same node.
// It is a pure function; it returns the VIPs to take now and when to look again.
func Takeover(node string, vips []vigilv1.VirtualIP, members map[string]membership.State, majority bool, fenceAfter time.Duration, now time.Time) (take []string, again time.Duration) {
	if !majority {
		return nil, 0
	}
	later := func(d time.Duration) {
		if again == 0 || d < again {
			again = d
		}
	}
	for i := range vips {
		v := &vips[i]
		owner, ok := members[v.Status.Owner]
		if v.Status.Owner == "" || v.Status.Owner == node || !ok || owner.Alive {
			continue
		}
		wait, first := deadFor(owner, fenceAfter, now), false
		for _, s := range v.Status.Standbys {
			if s == node {
				first = true
				break
			}
			st, known := members[s]
			if st.Alive {
				break // a live standby ahead: it takes the VIP
			}
			if known {
				wait = max(wait, deadFor(st, fenceAfter, now))
			}
		}
		switch {
		case !first:
		case wait > 0:
			later(wait)
		default:
			take = append(take, v.Name)
		}
	}
	return take, again
}

// deadFor is how much longer a dead member must stay dead before it has been so for
// fenceAfter; 0 or less once it has.
func deadFor(s membership.State, fenceAfter time.Duration, now time.Time) time.Duration {
	return s.Since.Add(fenceAfter).Sub(now)
}
