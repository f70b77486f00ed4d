package v1alpha1_test

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// newVIP builds an unstructured VirtualIP from a YAML spec, so that rows can hold values
// the Go types could not even represent (bad durations, unknown enums).
func newVIP(t *testing.T, name, specYAML string) *unstructured.Unstructured {
	t.Helper()
	var spec map[string]any
	if err := yaml.Unmarshal([]byte(specYAML), &spec); err != nil {
		t.Fatalf("bad test spec: %v", err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": vigilv1.GroupVersion.String(),
		"kind":       "VirtualIP",
		"metadata":   map[string]any{"name": name},
		"spec":       spec,
	}}
	return u
}

// Every case DESIGN §2 says the schema rejects, with the message a person sees.
func TestInvalidVirtualIPsAreRejectedWithAClearMessage(t *testing.T) {
	tcp := "healthChecks: [{name: web, tcp: {port: 80}"
	cases := []struct {
		name, spec, message string
	}{
		{"missing address", `prefixLength: 32`, `spec.address: Required value`},
		{"not an IP", `address: db.example.com`, "address must be an IPv4 or IPv6 address"},
		{"IPv4 with leading zeros", `address: 198.018.1.10`, "address must be an IPv4 or IPv6 address"},
		{"CIDR v4", `address: 198.18.1.10/32`, "address must be a single IPv4 or IPv6 address, not a CIDR; put the prefix in prefixLength"},
		{"CIDR v6", `address: fd00::10/64`, "not a CIDR; put the prefix in prefixLength"},
		{"IPv6 not canonical", `address: FD00::0010`, "address must be written in canonical form"},
		{"unspecified v4", `address: 0.0.0.0`, "address must not be the unspecified address"},
		{"unspecified v6", `address: "::"`, "address must not be the unspecified address"},
		{"loopback v4", `address: 127.0.0.1`, "address must not be a loopback address"},
		{"loopback v6", `address: "::1"`, "address must not be a loopback address"},
		{"multicast v4", `address: 239.1.1.1`, "address must not be a multicast or broadcast address"},
		{"multicast v6", `address: ff05::1`, "address must not be a multicast or broadcast address"},
		{"broadcast", `address: 255.255.255.255`, "address must not be a multicast or broadcast address"},
		{"broadcast is also reserved", `address: 255.255.255.255`, "address must not be in 240.0.0.0/4, which is reserved"},
		{"this network", `address: 0.1.2.3`, "address must not be in 0.0.0.0/8, which means 'this network' and is never the address of a host"},
		{"reserved 240/4", `address: 240.0.0.1`, "address must not be in 240.0.0.0/4, which is reserved: most hosts and routers drop it"},
		{"reserved 240/4, top", `address: 254.255.255.254`, "address must not be in 240.0.0.0/4"},
		{"network address of a /24", "address: 198.18.1.0\nprefixLength: 24",
			"spec.address: Invalid value: address 198.18.1.0 is the network address of the /24 subnet, not a host address: choose a host address in it, or prefixLength 31 or 32"},
		{"network address of a /20", "address: 198.18.16.0\nprefixLength: 20", "address 198.18.16.0 is the network address of the /20 subnet"},
		{"network address of a /1", "address: 128.0.0.0\nprefixLength: 1", "address 128.0.0.0 is the network address of the /1 subnet"},
		{"broadcast address of a /24", "address: 198.18.1.255\nprefixLength: 24",
			"spec.address: Invalid value: address 198.18.1.255 is the broadcast address of its /24 subnet, not a host address: choose a host address in it, or prefixLength 31 or 32"},
		{"broadcast address of a /20", "address: 198.18.31.255\nprefixLength: 20", "address 198.18.31.255 is the broadcast address of its /20 subnet"},
		{"broadcast address of a /30", "address: 198.18.1.7\nprefixLength: 30", "address 198.18.1.7 is the broadcast address of its /30 subnet"},
		{"subnet-router anycast of a /64", "address: \"fd00:1::\"\nprefixLength: 64",
			"spec.address: Invalid value: address fd00:1:: is the subnet-router anycast address of the /64 subnet, which its routers answer: choose a host address in it, or prefixLength 127 or 128"},
		{"subnet-router anycast of a /126", "address: fd00:1::4\nprefixLength: 126", "address fd00:1::4 is the subnet-router anycast address of the /126 subnet"},
		{"link-local v4", `address: 169.254.10.1`, "address must not be a link-local address"},
		{"link-local v6", `address: fe80::1`, "address must not be a link-local address"},
		{"link-local multicast v6", `address: ff02::1`, "address must not be a link-local address"},
		{"prefix 0", "address: 198.18.1.10\nprefixLength: 0", "spec.prefixLength: Invalid value: 0: spec.prefixLength in body should be greater than or equal to 1"},
		{"prefix 33 on IPv4", "address: 198.18.1.10\nprefixLength: 33", "prefixLength must be between 1 and 32 for an IPv4 address"},
		{"prefix 129 on IPv6", "address: fd00::10\nprefixLength: 129", "spec.prefixLength in body should be less than or equal to 128"},
		{"interface with slash", "address: 198.18.1.10\ninterface: eth0/1", "interface must be a Linux interface name"},
		{"interface too long", "address: 198.18.1.10\ninterface: averyveryverylongname", "spec.interface: Too long: may not be more than 15 bytes"},
		{"unknown preemption", "address: 198.18.1.10\npreemption: Sometimes", `spec.preemption: Unsupported value: "Sometimes": supported values: "Never", "Always"`},
		{"preemptionDelay without Always", "address: 198.18.1.10\npreemptionDelay: 30s", "preemptionDelay is only used with preemption: Always"},
		{"preemptionDelay not a duration", "address: 198.18.1.10\npreemption: Always\npreemptionDelay: soon", "preemptionDelay must be a duration such as 30s or 5m"},
		{"priority 0", "address: 198.18.1.10\npriorities: [{nodeSelector: {}, priority: 0}]", "spec.priorities[0].priority in body should be greater than or equal to 1"},
		{"priority 256", "address: 198.18.1.10\npriorities: [{nodeSelector: {}, priority: 256}]", "spec.priorities[0].priority in body should be less than or equal to 255"},
		{"no probe kind", "address: 198.18.1.10\nhealthChecks: [{name: web}]", "a health check needs exactly one of icmp, tcp or http"},
		{"two probe kinds", "address: 198.18.1.10\nhealthChecks: [{name: web, tcp: {port: 80}, http: {port: 80}}]", "a health check needs exactly one of icmp, tcp or http"},
		{"tcp port 0", "address: 198.18.1.10\nhealthChecks: [{name: web, tcp: {port: 0}}]", "spec.healthChecks[0].tcp.port in body should be greater than or equal to 1"},
		{"tcp port 65536", "address: 198.18.1.10\nhealthChecks: [{name: web, tcp: {port: 65536}}]", "spec.healthChecks[0].tcp.port in body should be less than or equal to 65535"},
		{"http port 70000", "address: 198.18.1.10\nhealthChecks: [{name: web, http: {port: 70000}}]", "spec.healthChecks[0].http.port in body should be less than or equal to 65535"},
		{"http path without slash", "address: 198.18.1.10\nhealthChecks: [{name: web, http: {port: 80, path: healthz}}]", "path must start with '/'"},
		{"unknown http scheme", "address: 198.18.1.10\nhealthChecks: [{name: web, http: {port: 80, scheme: FTP}}]", `Unsupported value: "FTP": supported values: "HTTP", "HTTPS"`},
		{"insecureSkipVerify on HTTP", "address: 198.18.1.10\nhealthChecks: [{name: web, http: {port: 80, insecureSkipVerify: true}}]", "insecureSkipVerify only applies to scheme HTTPS"},
		{"expected status 700", "address: 198.18.1.10\nhealthChecks: [{name: web, http: {port: 80, expectedStatuses: [700]}}]", "should be less than or equal to 599"},
		{"tcp host not a name", "address: 198.18.1.10\nhealthChecks: [{name: web, tcp: {port: 80, host: 'not a host'}}]", "host must be an IP address or a DNS name"},
		{"icmp target not an IP", "address: 198.18.1.10\nhealthChecks: [{name: gw, icmp: {target: router}}]", "target must be an IP address or the word gateway"},
		{"timeout longer than interval", "address: 198.18.1.10\n" + tcp + ", interval: 1s, timeout: 2s}]", "timeout must not be longer than interval"},
		{"interval below 100ms", "address: 198.18.1.10\n" + tcp + ", interval: 50ms}]", "interval must be at least 100ms"},
		{"interval not a duration", "address: 198.18.1.10\n" + tcp + ", interval: 1 second}]", "interval must be a duration such as 500ms, 1s or 2m"},
		{"timeout below 10ms", "address: 198.18.1.10\n" + tcp + ", timeout: 5ms}]", "timeout must be at least 10ms"},
		{"failureThreshold 0", "address: 198.18.1.10\n" + tcp + ", failureThreshold: 0}]", "failureThreshold in body should be greater than or equal to 1"},
		{"successThreshold 101", "address: 198.18.1.10\n" + tcp + ", successThreshold: 101}]", "successThreshold in body should be less than or equal to 100"},
		{"check name not a label", "address: 198.18.1.10\nhealthChecks: [{name: Web_1, tcp: {port: 80}}]", "name must be lower-case letters, digits and '-'"},
		{"duplicate check names", "address: 198.18.1.10\nhealthChecks: [{name: web, tcp: {port: 80}}, {name: web, tcp: {port: 81}}]", `spec.healthChecks[1]: Duplicate value: {"name":"web"}`},
		{"announce count 0", "address: 198.18.1.10\nannounce: {count: 0}", "spec.announce.count in body should be greater than or equal to 1"},
		{"announce interval below 10ms", "address: 198.18.1.10\nannounce: {interval: 1ms}", "announce interval must be between 10ms and 10s"},
		{"refreshInterval below 1s", "address: 198.18.1.10\nannounce: {refreshInterval: 500ms}", "refreshInterval must be 0s (off) or between 1s and 24h"},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := env.Client.Create(ctx, newVIP(t, "invalid", tc.spec), client.DryRunAll)
			if err == nil {
				t.Fatalf("spec was accepted, want rejection with %q:\n%s", tc.message, tc.spec)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("rejection message\n  %s\ndoes not contain\n  %s", err, tc.message)
			}
			t.Logf("rejected: %s", err)
		})
	}
}

// The rules that refuse reserved addresses and the network and broadcast addresses of a
// prefix must not catch their neighbours, nor the point-to-point prefixes that have no
// network or broadcast address (RFC 3021, RFC 6164), nor an address without prefixLength.
func TestHostAddressesBesideReservedOnesAreAccepted(t *testing.T) {
	specs := []string{
		"address: 1.0.0.0",
		"address: 223.255.255.254",
		"address: 198.18.1.0",
		"address: 198.18.1.255",
		"address: 198.18.1.1\nprefixLength: 24",
		"address: 198.18.1.254\nprefixLength: 24",
		"address: 198.18.1.0\nprefixLength: 23",
		"address: 198.18.0.255\nprefixLength: 23",
		"address: 198.18.1.0\nprefixLength: 31",
		"address: 198.18.1.1\nprefixLength: 31",
		"address: 198.18.1.255\nprefixLength: 32",
		"address: 198.18.1.5\nprefixLength: 30",
		"address: \"fd00:1::\"",
		"address: fd00:1::1\nprefixLength: 64",
		"address: fd00:1::ffff:ffff:ffff:ffff\nprefixLength: 64",
		"address: \"fd00:1::\"\nprefixLength: 127",
		"address: \"fd00:1::\"\nprefixLength: 128",
	}
	for _, spec := range specs {
		if err := env.Client.Create(context.Background(), newVIP(t, "host-address", spec), client.DryRunAll); err != nil {
			t.Errorf("rejected:\n%s\n%v", spec, err)
		}
	}
}

func getVIP(t *testing.T, name string) *vigilv1.VirtualIP {
	t.Helper()
	var vip vigilv1.VirtualIP
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, &vip); err != nil {
		t.Fatalf("reading back %s: %v", name, err)
	}
	return &vip
}

func createVIP(t *testing.T, name, spec string) *vigilv1.VirtualIP {
	t.Helper()
	u := newVIP(t, name, spec)
	if err := env.Client.Create(context.Background(), u); err != nil {
		t.Fatalf("valid spec rejected: %v\n%s", err, spec)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), u) })
	return getVIP(t, name)
}

func TestMinimalIPv4IsAcceptedWithDefaults(t *testing.T) {
	vip := createVIP(t, "minimal-v4", `address: 198.18.1.10`)
	if vip.Spec.Preemption != vigilv1.PreemptionNever {
		t.Errorf("preemption defaulted to %q, want Never", vip.Spec.Preemption)
	}
	want := vigilv1.Announce{Count: 3, Interval: metav1.Duration{Duration: 100 * time.Millisecond}}
	if vip.Spec.Announce != want {
		t.Errorf("announce defaulted to %+v, want %+v", vip.Spec.Announce, want)
	}
	if vip.Spec.PrefixLength != nil || vip.Spec.EffectivePrefixLength() != 32 {
		t.Errorf("prefixLength %v (effective %d), want unset and effective 32", vip.Spec.PrefixLength, vip.Spec.EffectivePrefixLength())
	}
}

func TestMinimalIPv6IsAcceptedWithDefaults(t *testing.T) {
	vip := createVIP(t, "minimal-v6", `address: fd00:198:18::10`)
	if got := vip.Spec.EffectivePrefixLength(); got != 128 {
		t.Errorf("effective prefixLength %d, want 128", got)
	}
	if vip.Spec.Announce.Count != 3 || vip.Spec.Preemption != vigilv1.PreemptionNever {
		t.Errorf("defaults not filled: %+v", vip.Spec)
	}
}

func TestFullObjectIsAcceptedWithCheckDefaults(t *testing.T) {
	vip := createVIP(t, "full", `
address: 198.18.1.20
prefixLength: 24
interface: eth0
nodeSelector: {matchLabels: {vigil.dev/role: edge}}
priorities:
- nodeSelector: {matchLabels: {kubernetes.io/hostname: node-a}}
  priority: 200
preemption: Always
preemptionDelay: 30s
healthChecks:
- name: web
  tcp: {port: 80}
- name: gateway
  icmp: {target: gateway}
  interval: 500ms
- name: api
  http: {port: 8443, path: /healthz, scheme: HTTPS, hostHeader: api.example.com, expectedStatuses: [200, 204], insecureSkipVerify: true}
  interval: 2s
  timeout: 1500ms
  failureThreshold: 5
  successThreshold: 2
announce: {count: 5, interval: 50ms, refreshInterval: 30s}
`)
	if len(vip.Spec.HealthChecks) != 3 {
		t.Fatalf("want 3 health checks, got %+v", vip.Spec.HealthChecks)
	}
	web, gw, api := vip.Spec.HealthChecks[0], vip.Spec.HealthChecks[1], vip.Spec.HealthChecks[2]
	if web.Interval.Duration != time.Second || web.FailureThreshold != 3 || web.SuccessThreshold != 1 || web.TCP.Host != "127.0.0.1" {
		t.Errorf("tcp check defaults not filled: %+v %+v", web, web.TCP)
	}
	if web.EffectiveTimeout() != time.Second || gw.EffectiveTimeout() != 500*time.Millisecond {
		t.Errorf("effective timeouts %v and %v, want 1s and 500ms", web.EffectiveTimeout(), gw.EffectiveTimeout())
	}
	if api.HTTP.Path != "/healthz" || api.HTTP.Scheme != vigilv1.HTTPSchemeHTTPS || api.HTTP.Host != "127.0.0.1" || api.EffectiveTimeout() != 1500*time.Millisecond {
		t.Errorf("http check not as written: %+v %+v", api, api.HTTP)
	}
	if vip.Spec.PreemptionDelay.Duration != 30*time.Second || vip.Spec.Announce.RefreshInterval.Duration != 30*time.Second {
		t.Errorf("durations not as written: %+v", vip.Spec)
	}
}

func TestHTTPCheckDefaults(t *testing.T) {
	vip := createVIP(t, "http-defaults", "address: fd00::20\nhealthChecks: [{name: web, http: {port: 80}}]")
	h := vip.Spec.HealthChecks[0].HTTP
	if h.Path != "/" || h.Scheme != vigilv1.HTTPSchemeHTTP || h.Host != "127.0.0.1" || h.InsecureSkipVerify {
		t.Errorf("http defaults not filled: %+v", h)
	}
}

func TestAddressIsImmutable(t *testing.T) {
	ctx := context.Background()
	vip := createVIP(t, "immutable", `address: 198.18.1.30`)

	changed := vip.DeepCopy()
	changed.Spec.Address = "198.18.1.31"
	err := env.Client.Update(ctx, changed)
	if err == nil || !strings.Contains(err.Error(), "address is immutable: create a new VirtualIP for a different address") {
		t.Fatalf("changing the address: want the immutability message, got %v", err)
	}

	// Other fields stay editable.
	edited := vip.DeepCopy()
	edited.Spec.Announce.Count = 7
	if err := env.Client.Update(ctx, edited); err != nil {
		t.Fatalf("changing announce.count was rejected: %v", err)
	}
	if got := getVIP(t, "immutable"); got.Spec.Address != "198.18.1.30" || got.Spec.Announce.Count != 7 {
		t.Errorf("after update: address %s count %d", got.Spec.Address, got.Spec.Announce.Count)
	}
}
