package agent

import (
	"slices"
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
//     off has by then released its VIPs (it reaches neither the API nor a majority).
//
// When the API server returns the controller elects as usual, normally the same node.
// It is a pure function; it returns the VIPs to take now and when to look again.
func Takeover(node string, vips []vigilv1.VirtualIP, members map[string]membership.State, majority bool, fenceAfter time.Duration, now time.Time) (take []string, again time.Duration) {
	if !majority {
		return nil, 0
	}
	alive := func(n string) bool { s, ok := members[n]; return ok && s.Alive }
	for i := range vips {
		v := &vips[i]
		owner, ok := members[v.Status.Owner]
		if v.Status.Owner == "" || v.Status.Owner == node || !ok || owner.Alive {
			continue
		}
		first := slices.IndexFunc(v.Status.Standbys, alive)
		if first < 0 || v.Status.Standbys[first] != node {
			continue
		}
		if wait := owner.Since.Add(fenceAfter).Sub(now); wait > 0 {
			if again == 0 || wait < again {
				again = wait
			}
			continue
		}
		take = append(take, v.Name)
	}
	return take, again
}
