package keepalived

import (
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// wantVIP is an expected VirtualIP: its name and whole spec.
type wantVIP struct {
	Name string                `json:"name"`
	Spec vigilv1.VirtualIPSpec `json:"spec"`
}

// convertHosts converts the configurations of hosts given as node name -> keepalived.conf,
// in the order given.
func convertHosts(t *testing.T, hosts ...[2]string) Result {
	t.Helper()
	var sources []Source
	for _, h := range hosts {
		cfg, err := Parse(h[0]+".conf", []byte(h[1]))
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, Source{Node: h[0], Config: cfg})
	}
	out, res := convertToYAML(t, sources)
	checkOutput(t, out, res)
	return res
}

// noteTexts lists every note as "setting: text", the file-wide ones first.
func noteTexts(res Result) string {
	var lines []string
	add := func(notes []Note) {
		for _, n := range notes {
			lines = append(lines, n.Setting+": "+n.Text)
		}
	}
	add(res.Notes)
	for _, v := range res.VirtualIPs {
		add(v.Notes)
	}
	return strings.Join(lines, "\n")
}

// realisticConfigs are configurations as they are found on real load balancers, with the
// VirtualIPs they must convert to, exactly, and parts of the notes on what was left behind.
var realisticConfigs = []struct {
	name  string
	node  string // "" for a file converted without --node
	conf  string
	want  string   // the VirtualIPs, a YAML list of wantVIP
	notes []string // parts of the notes, "setting: text"
}{{
	name: "kubeadm control plane behind keepalived and haproxy",
	node: "cp-1",
	conf: `
global_defs {
    router_id LVS_DEVEL
}
vrrp_script check_apiserver {
  script "/etc/keepalived/check_apiserver.sh"
  interval 3
  weight -2
  fall 10
  rise 2
}
vrrp_instance VI_1 {
    state MASTER
    interface ens160
    virtual_router_id 51
    priority 101
    authentication {
        auth_type PASS
        auth_pass 42
    }
    virtual_ipaddress {
        192.168.0.200
    }
    track_script {
        check_apiserver
    }
}`,
	want: `
- name: vi-1
  spec:
    address: 192.168.0.200
    interface: ens160
    priorities: [{nodeSelector: {matchLabels: {kubernetes.io/hostname: cp-1}}, priority: 101}]
    preemption: Always
    preemptionDelay: 0s`,
	notes: []string{
		"vrrp_script check_apiserver: script /etc/keepalived/check_apiserver.sh: not converted: it runs /etc/keepalived/check_apiserver.sh",
		"authentication {...}: not needed: agents gossip over memberlist",
		"global_defs: router_id LVS_DEVEL: not needed",
	},
}, {
	name: "nginx pair with a process check and a backup that does not preempt",
	conf: `
vrrp_script chk_nginx {
    script "/usr/bin/pgrep nginx"
    interval 2
}
vrrp_script chk_http {
    script "curl -sf -m 1 http://127.0.0.1/healthz"
    interval 2
    fall 2
    rise 3
}
vrrp_instance VI_WEB {
    state BACKUP
    interface eth0
    virtual_router_id 7
    priority 90
    advert_int 1
    nopreempt
    unicast_src_ip 10.0.1.12
    unicast_peer {
        10.0.1.11
    }
    virtual_ipaddress {
        10.0.1.100/24 dev eth0 label eth0:1
    }
    track_script {
        chk_nginx
        chk_http
    }
    notify_master "/etc/keepalived/master.sh"
}`,
	want: `
- name: vi-web
  spec:
    address: 10.0.1.100
    prefixLength: 24
    interface: eth0
    preemption: Never
    healthChecks:
      - {name: chk-http, http: {host: 127.0.0.1, port: 80, path: /healthz, scheme: HTTP}, interval: 2s, timeout: 1s, failureThreshold: 2, successThreshold: 3}`,
	notes: []string{
		"priority 90: no priorities entry: the file's node is not known",
		`vrrp_script chk_nginx: script "/usr/bin/pgrep nginx": not converted: pgrep checks that a process runs`,
		"unicast_peer {...}: not needed",
		"notify_master /etc/keepalived/master.sh: not mapped: Vigil runs no scripts on transitions",
		"10.0.1.100/24 label eth0:1: not mapped",
	},
}, {
	name: "dual-stack router with gratuitous ARP tuning and a gateway ping",
	node: "edge-1",
	conf: `
global_defs {
    vrrp_garp_master_refresh 60
}
vrrp_script chk_gw {
    script "ping -c 1 -W 1 198.51.100.1"
    interval 1
    fall 3
}
vrrp_instance OUTSIDE {
    interface eth0
    virtual_router_id 9
    priority 200
    preempt_delay 60
    garp_master_repeat 10
    garp_interval 0.05
    virtual_ipaddress {
        198.51.100.10/24
        2001:db8:100::10/64
    }
    track_script {
        chk_gw weight -50
    }
}`,
	want: `
- name: outside-1
  spec:
    address: 198.51.100.10
    prefixLength: 24
    interface: eth0
    priorities: &edge-1 [{nodeSelector: {matchLabels: {kubernetes.io/hostname: edge-1}}, priority: 200}]
    preemption: Always
    preemptionDelay: 1m0s
    healthChecks: &chk-gw
      - {name: chk-gw, icmp: {target: 198.51.100.1}, interval: 1s, timeout: 1s, failureThreshold: 3, successThreshold: 1}
    announce: {count: 10, interval: 50ms, refreshInterval: 1m0s}
- name: outside-2
  spec:
    address: 2001:db8:100::10
    prefixLength: 64
    interface: eth0
    priorities: *edge-1
    preemption: Always
    preemptionDelay: 1m0s
    healthChecks: *chk-gw
    announce: {count: 10, refreshInterval: 1m0s}`,
	notes: []string{
		"track_script: chk_gw weight -50: keepalived lowered the priority by 50",
		"preempt_delay 60: mapped to preemptionDelay",
		"garp_interval 0.05: not needed: it applies to the other address family",
	},
}}

// Each realistic configuration converts whole to exactly its VirtualIPs and notes.
func TestConvertRealisticConfigs(t *testing.T) {
	for _, tc := range realisticConfigs {
		t.Run(tc.name, func(t *testing.T) {
			res := convertHosts(t, [2]string{tc.node, tc.conf})
			var want []wantVIP
			if err := yaml.UnmarshalStrict([]byte(tc.want), &want); err != nil {
				t.Fatalf("bad want: %v", err)
			}
			var got []wantVIP
			for _, v := range res.VirtualIPs {
				got = append(got, wantVIP{Name: v.Object.Name, Spec: v.Object.Spec})
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("VirtualIPs\n%s\nwant\n%s", asJSON(got), asJSON(want))
			}
			notes := noteTexts(res)
			for _, n := range tc.notes {
				if !strings.Contains(notes, n) {
					t.Errorf("no note contains %q; notes:\n%s", n, notes)
				}
			}
		})
	}
}

// keepalived.conf is per host: the same address on three hosts is one VirtualIP whose
// priorities rank the hosts and whose nodeSelector keeps it on them.
func TestConvertMergesHostsByAddress(t *testing.T) {
	conf := func(state, prio, iface string) string {
		return `vrrp_instance VI_1 {
    state ` + state + `
    interface ` + iface + `
    virtual_router_id 51
    priority ` + prio + `
    virtual_ipaddress {
        10.9.0.1/24
    }
}`
	}
	res := convertHosts(t,
		[2]string{"node-b", conf("BACKUP", "100", "eth0")},
		[2]string{"node-a", conf("MASTER", "150", "eth0")},
		[2]string{"node-c", conf("BACKUP", "50", "eth1")},
	)
	want := []wantVIP{}
	if err := yaml.UnmarshalStrict([]byte(`
- name: vi-1
  spec:
    address: 10.9.0.1
    prefixLength: 24
    nodeSelector: {matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [node-b, node-a, node-c]}]}
    priorities:
      - {nodeSelector: {matchLabels: {kubernetes.io/hostname: node-b}}, priority: 100}
      - {nodeSelector: {matchLabels: {kubernetes.io/hostname: node-a}}, priority: 150}
      - {nodeSelector: {matchLabels: {kubernetes.io/hostname: node-c}}, priority: 50}
    preemption: Always
    preemptionDelay: 0s`), &want); err != nil {
		t.Fatal(err)
	}
	if len(res.VirtualIPs) != 1 || !reflect.DeepEqual(wantVIP{res.VirtualIPs[0].Object.Name, res.VirtualIPs[0].Object.Spec}, want[0]) {
		t.Fatalf("VirtualIPs\n%s\nwant\n%s", asJSON(res.VirtualIPs), asJSON(want))
	}
	notes := noteTexts(res)
	for _, n := range []string{
		"spec.interface on node-c: the hosts bind the address on different interfaces",
		"keepalived ran on node-b, node-a, node-c: nodeSelector keeps the address on these nodes",
		"state MASTER: not needed",
		"state BACKUP: not needed",
	} {
		if !strings.Contains(notes, n) {
			t.Errorf("no note contains %q; notes:\n%s", n, notes)
		}
	}
	if got := res.VirtualIPs[0].From; got != "vrrp_instance VI_1 (node-b.conf:1, node-a.conf:1, node-c.conf:1): 10.9.0.1/24" {
		t.Errorf("From = %q", got)
	}
}

// Passwords and credentials are never copied into the output, which ends up in a
// repository.
func TestConvertDoesNotCopySecrets(t *testing.T) {
	res := convertHosts(t, [2]string{"", `
vrrp_script chk {
    script "curl -sf -u admin:hunter2 https://ops:hunter3@127.0.0.1/"
}
vrrp_script unused {
    script "wget --password=hunter4 http://127.0.0.1/"
}
vrrp_instance VI_1 {
    authentication {
        auth_type PASS
        auth_pass hunter5
    }
    auth_pass hunter6
    virtual_ipaddress {
        10.9.0.2
    }
    track_script {
        chk
    }
}`})
	notes := noteTexts(res)
	for _, secret := range []string{"hunter2", "hunter3", "hunter4", "hunter5", "hunter6"} {
		if strings.Contains(notes, secret) {
			t.Errorf("notes contain %q:\n%s", secret, notes)
		}
	}
}

// A node name must be usable as the kubernetes.io/hostname label value.
func TestConvertRejectsBadNodeNames(t *testing.T) {
	for _, name := range []string{"Node_A", strings.Repeat("a", 64), "-a", "a b"} {
		if _, err := Convert([]Source{{Node: name}}); err == nil || !strings.Contains(err.Error(), "node name") {
			t.Errorf("node %q: error %v", name, err)
		}
	}
	if _, err := Convert([]Source{{Node: "ip-10-0-0-1.ec2.internal"}}); err != nil {
		t.Errorf("a DNS node name: %v", err)
	}
}

// label makes DNS-1123 labels of keepalived names; namer keeps them unique.
func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"VI_1": "vi-1", "haproxy-vip": "haproxy-vip", "__x__y__": "x-y", "___": "fallback",
		"Ünïcode_Name": "n-code-name", strings.Repeat("ab_", 40): strings.TrimSuffix(strings.Repeat("ab-", 21), "-"),
	} {
		if got := label(in, "fallback"); got != want {
			t.Errorf("label(%q) = %q, want %q", in, got, want)
		}
	}
	n := newNamer()
	long := strings.Repeat("a", 63)
	got := []string{n.unique("vi-1", 0), n.unique("vi-1", 0), n.unique("vi-1", 1), n.unique(long, 0), n.unique(long, 0)}
	want := []string{"vi-1", "vi-1-2", "vi-1-1", long, strings.Repeat("a", 61) + "-2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("unique names %q, want %q", got, want)
	}
}
