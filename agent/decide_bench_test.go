package agent

import (
	"fmt"
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// BenchmarkDecide is one decision of node a among 20 nodes holding 1000 VIPs between them,
// every NodeAgent reporting on every VIP (what the scale benchmark's 1000×20 run feeds
// each agent at every change): go test -run '^$' -bench Decide ./agent/
func BenchmarkDecide(b *testing.B) {
	const vips, nodes = 1000, 20
	node := func(i int) string {
		if i == 0 {
			return "a"
		}
		return fmt.Sprintf("n%02d", i)
	}
	var list []vigilv1.VirtualIP
	for i := range vips {
		addr := netip.AddrFrom4([4]byte{198, 18, 0, byte(100 + i%100)})
		list = append(list, vigilv1.VirtualIP{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("vip-%04d", i), UID: types.UID(fmt.Sprintf("uid-%04d", i))},
			Spec:       vigilv1.VirtualIPSpec{Address: addr.String()},
			Status:     vigilv1.VirtualIPStatus{Owner: node(i % nodes), Epoch: 1},
		})
	}
	var agents []vigilv1.NodeAgent
	for n := range nodes {
		a := vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: node(n)}}
		for i, v := range list {
			r := vigilv1.VIPEligibility{Name: v.Name, UID: v.UID, Eligible: true}
			if i%nodes == n {
				r.BoundEpoch = 1
			}
			a.Status.VIPs = append(a.Status.VIPs, r)
		}
		agents = append(agents, a)
	}
	in := observation(list...)
	in.Agents = agents
	b.ResetTimer()
	for b.Loop() {
		Decide(in)
	}
}
