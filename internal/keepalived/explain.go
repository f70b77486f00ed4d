package keepalived

import (
	"strings"
)

// Reasons shared by many settings. Each says why the setting has no VirtualIP field and what
// Vigil does instead, so that a reader can decide whether anything is lost.
const (
	whyVRRP = "not needed: Vigil does not speak VRRP; the controller elects the owner " +
		"and agents find each other through their NodeAgent objects and memberlist"
	whyDetect = "not needed: Vigil detects a dead node with memberlist heartbeats " +
		"(a probe every 100 ms, a dead node noticed within a few hundred ms), not with VRRP adverts"
	whyAuth = "not needed: agents gossip over memberlist, encrypted with the key in the " +
		"Secret vigil-memberlist (the password is not copied here)"
	whyPeers = "not needed: agents find each other through their NodeAgent objects and " +
		"talk over memberlist, which works across subnets without multicast"
	whyNotify = "not mapped: Vigil runs no scripts on transitions; it sets status.owner and " +
		"records an Event on every move: watch those (kubectl get vip -w, kubectl get events) or alert on them"
	whyMail = "not mapped: Vigil sends no mail; it records an Event on every move and sets " +
		"status.owner: alert on those"
	whyIPVS = "not mapped: Vigil binds the address on one node and does no load balancing " +
		"(IPVS); keep a Service or a proxy behind the VirtualIP for that"
	whyTrack = "not mapped: Vigil decides with its own health checks (icmp, tcp, http) run " +
		"by the agent; replace it with a check of the service itself"
	whyScripts = "not needed: Vigil runs no scripts"
	whyRoutes  = "not mapped: Vigil binds only the address; manage routes and rules with the " +
		"node's network configuration"
	whyVMAC = "not mapped: Vigil binds the address on the interface itself and announces it " +
		"with the node's own MAC address"
	whyInclude = "not followed: convert the included files too, by passing them after this " +
		"file (with the same --node)"
	whyMonitoring = "not mapped: Vigil has no SNMP or D-Bus interface; its state is in the " +
		"VirtualIP's status and Events, and its metrics are Prometheus metrics"
	whyUnknown = "not mapped: Vigil has no equivalent setting"
)

// reasons says why a keyword is not mapped, wherever it appears. Keywords that some block
// maps are handled there first; this is the fallback.
var reasons = map[string]string{
	"include":                    whyInclude,
	"state":                      "not needed: Vigil elects the owner: the eligible node with the highest priority (see priorities)",
	"virtual_router_id":          "not needed: Vigil does not speak VRRP; the VirtualIP's name identifies the address",
	"advert_int":                 whyDetect,
	"authentication":             whyAuth,
	"unicast_peer":               whyPeers,
	"unicast_src_ip":             whyPeers,
	"unicast_ttl":                whyPeers,
	"mcast_src_ip":               whyPeers,
	"unicast_fault_no_peer":      whyPeers,
	"notify":                     whyNotify,
	"notify_master":              whyNotify,
	"notify_backup":              whyNotify,
	"notify_fault":               whyNotify,
	"notify_stop":                whyNotify,
	"notify_deleted":             whyNotify,
	"notify_master_rx_lower_pri": whyNotify,
	"notify_up":                  whyNotify,
	"notify_down":                whyNotify,
	"smtp_alert":                 whyMail,
	"router_id":                  "not needed: Vigil knows each node by its Kubernetes node name",
	"enable_script_security":     whyScripts,
	"script_user":                whyScripts,
	"track_file":                 whyTrack,
	"track_process":              whyTrack,
	"track_bfd":                  whyTrack,
	"vrrp_track_file":            whyTrack,
	"vrrp_track_process":         whyTrack,
	"bfd_instance":               whyTrack,
	"virtual_routes":             whyRoutes,
	"virtual_rules":              whyRoutes,
	"static_ipaddress":           whyRoutes,
	"static_routes":              whyRoutes,
	"static_rules":               whyRoutes,
	"use_vmac":                   whyVMAC,
	"vmac_xmit_base":             whyVMAC,
	"dynamic_interfaces":         "not needed: the agent resolves the interface when it binds the address",
	"dont_track_primary":         "not needed: Vigil tracks only the interface the address is bound on",
	"virtual_server_group":       whyIPVS,
	"lvs_sync_daemon":            whyIPVS,
	"lvs_sync_daemon_interface":  whyIPVS,
	"enable_traps":               whyMonitoring,
	"enable_dbus":                whyMonitoring,
	"enable_snmp_keepalived":     whyMonitoring,
	"enable_snmp_vrrp":           whyMonitoring,
	"enable_snmp_checker":        whyMonitoring,
	"enable_snmp_rfc":            whyMonitoring,
	"vrrp_sync_group":            "not mapped: Vigil moves each VirtualIP on its own",
	// vrrp_instance keywords that tune the VRRP protocol itself.
	"version":                 whyVRRP,
	"native_ipv6":             whyVRRP,
	"accept":                  whyVRRP,
	"no_accept":               whyVRRP,
	"strict_mode":             whyVRRP,
	"skip_check_adv_addr":     whyVRRP,
	"check_unicast_src":       whyVRRP,
	"higher_prio_send_advert": whyVRRP,
	"kernel_rx_buf_size":      whyVRRP,
	"debug":                   whyVRRP,
	"promote_secondaries":     whyVRRP,
}

// reasonFor explains why a keyword is not mapped, by name or by its family.
func reasonFor(keyword string) string {
	if r, ok := reasons[keyword]; ok {
		return r
	}
	if strings.HasPrefix(keyword, "$") || strings.HasPrefix(keyword, "~") {
		return "not expanded: keepalived's $NAME definitions and ~SEQ are not supported; write the values out"
	}
	prefixes := []struct{ prefix, reason string }{
		{"notification_email", whyMail}, {"smtp_", whyMail}, {"notify", whyNotify},
		{"lvs_", whyIPVS}, {"vrrp_", whyVRRP}, {"snmp", whyMonitoring},
		{"garp_lower_prio", whyVRRP}, {"unicast_", whyPeers}, {"mcast_", whyPeers},
	}
	for _, p := range prefixes {
		if strings.HasPrefix(keyword, p.prefix) {
			return p.reason
		}
	}
	return whyUnknown
}
