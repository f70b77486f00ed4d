package agent

import (
	"strings"
	"testing"

	"vigil.dev/vigil/internal/flagutil"
	"vigil.dev/vigil/internal/membership"
)

func TestListenOn(t *testing.T) {
	for _, tc := range []struct{ hostport, ip, want string }{
		{":9470", "", ":9470"},
		{":9470", "198.18.0.11", "198.18.0.11:9470"},
		{":9470", "fd00:198:18::11", "[fd00:198:18::11]:9470"},
		{"127.0.0.1:9470", "198.18.0.11", "127.0.0.1:9470"},
		{"[::1]:9470", "198.18.0.11", "[::1]:9470"},
		{"0", "198.18.0.11", "0"},
		{"", "198.18.0.11", ""},
	} {
		if got := listenOn(tc.hostport, tc.ip); got != tc.want {
			t.Errorf("listenOn(%q, %q) = %q, want %q", tc.hostport, tc.ip, got, tc.want)
		}
	}
}

func TestWithBindAddressSetsEveryListener(t *testing.T) {
	o := Options{BindAddress: "fd00:198:18::11", HealthProbeBindAddress: ":9471",
		Metrics: flagutil.MetricsFlags{BindAddress: "0"}, Memberlist: membership.Options{Bind: ":7952"}}
	got := o.withBindAddress()
	if got.HealthProbeBindAddress != "[fd00:198:18::11]:9471" || got.Metrics.BindAddress != "0" || got.Memberlist.Bind != "[fd00:198:18::11]:7952" {
		t.Errorf("health %q, metrics %q, memberlist %q", got.HealthProbeBindAddress, got.Metrics.BindAddress, got.Memberlist.Bind)
	}
	if o.Memberlist.Bind != ":7952" {
		t.Error("withBindAddress changed its receiver")
	}
}

func TestValidateBindIP(t *testing.T) {
	for ip, want := range map[string]string{
		"": "", "198.18.0.11": "", "fd00::11": "",
		"198.18.0.11:9470": "is not an IP address", "node-a": "is not an IP address", "$(HOST_IP)": "is not an IP address",
	} {
		err := validateBindIP(ip)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("validateBindIP(%q) = %v, want %q", ip, err, want)
		}
	}
}
