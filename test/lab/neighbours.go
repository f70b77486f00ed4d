package lab

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// neighbourTableLimit is the kernel's gc_thresh3: the most dynamic neighbour entries of one
// family the machine holds, for all its namespaces together.
const neighbourTableLimit = 1024

// NeighbourTableFull says whether a full mesh of n nodes (plus the control plane and the
// client) needs more dynamic IPv4 neighbour entries than the machine holds: then the lab
// must PinNeighbours, or memberlist's probes among the nodes are dropped.
func NeighbourTableFull(n int) bool {
	members := n + 2
	return members*(members-1) > neighbourTableLimit*3/4
}

// PinNeighbours writes, in every member's namespace (nodes, control plane, client), a
// permanent IPv4 neighbour entry for every other member's eth0. The kernel's neighbour
// table is one for the whole machine (gc_thresh3: 1024 entries per family), while in a
// cluster each machine has its own: 50 nodes gossiping with each other need about 2,500
// entries, and a full table drops packets (memberlist probes among them). Permanent
// entries do not count toward that limit (Linux 4.19 on). The VIPs' entries stay dynamic:
// an owner's announcement must still move them. NeighbourTableFull says when a lab needs it.
func (l *Lab) PinNeighbours() error {
	members := append([]*Member{l.Client}, l.Nodes...)
	if l.ControlPlane != nil {
		members = append(members, l.ControlPlane)
	}
	macs := make([]string, len(members))
	for i, m := range members {
		out, err := l.Exec(m.Name, "ip", "-br", "link", "show", "dev", NodeInterface)
		if err != nil {
			return fmt.Errorf("reading the hardware address of %s: %w", m.Name, err)
		}
		if f := strings.Fields(out); len(f) >= 3 {
			macs[i] = f[2]
		}
		if _, err := net.ParseMAC(macs[i]); err != nil {
			return fmt.Errorf("hardware address of %s in %q: %w", m.Name, out, err)
		}
	}
	for i, m := range members {
		var batch strings.Builder
		for j, other := range members {
			if j != i {
				fmt.Fprintf(&batch, "neigh replace %s lladdr %s nud permanent dev %s\n", other.IPv4, macs[j], NodeInterface)
			}
		}
		path := filepath.Join(l.RunDir, "neighbours-"+m.Name+".batch")
		if err := os.WriteFile(path, []byte(batch.String()), 0o644); err != nil {
			return err
		}
		if out, err := l.Exec(m.Name, "ip", "-batch", path); err != nil {
			return fmt.Errorf("pinning the neighbours of %s: %w: %s", m.Name, err, out)
		}
	}
	return nil
}
