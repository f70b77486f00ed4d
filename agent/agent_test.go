package agent

import (
	"net/netip"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"vigil.dev/vigil/agent/dataplane"
	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

func TestToVIPCarriesAddressPrefixInterfaceAndAnnouncePolicy(t *testing.T) {
	v := func(name, addr, owner string, prefix *int32) vigilv1.VirtualIP {
		return vigilv1.VirtualIP{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: vigilv1.VirtualIPSpec{Address: addr, PrefixLength: prefix, Interface: "eth0", Announce: vigilv1.Announce{
				Count: 3, Interval: metav1.Duration{Duration: 100 * time.Millisecond}, RefreshInterval: metav1.Duration{Duration: time.Minute},
			}},
			Status: vigilv1.VirtualIPStatus{Owner: owner},
		}
	}
	p24 := int32(24)
	var got []dataplane.VIP
	for _, vip := range []vigilv1.VirtualIP{
		v("a", "198.18.0.100", "node-a", nil),
		v("b", "198.18.0.101", "node-a", &p24),
		v("v6", "fd00::100", "node-a", nil),
	} {
		dv, ok := ToVIP(&vip)
		if !ok {
			t.Fatalf("%s not converted", vip.Name)
		}
		got = append(got, dv)
	}
	want := []struct {
		name string
		addr string
		bits int
	}{{"a", "198.18.0.100", 32}, {"b", "198.18.0.101", 24}, {"v6", "fd00::100", 128}}
	if len(got) != len(want) {
		t.Fatalf("got %d VIPs, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.Address != netip.MustParseAddr(w.addr) || g.PrefixLen != w.bits || g.Interface != "eth0" ||
			g.Announce.Count != 3 || g.Announce.Interval != 100*time.Millisecond || g.Announce.Refresh != time.Minute {
			t.Errorf("VIP %d = %+v, want %s %s/%d on eth0 with the announce policy", i, g, w.name, w.addr, w.bits)
		}
	}
}
