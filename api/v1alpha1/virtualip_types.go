package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of a VirtualIP.
const (
	// ConditionReady is True while a node holds the address and announces it.
	ConditionReady = "Ready"
	// ConditionConflict is True when another VirtualIP claims the same address (the older
	// object keeps it and the newer one is never bound), or when the address belongs to
	// something else in the cluster (reason AddressReserved: never bound).
	ConditionConflict = "Conflict"
	// ConditionDegraded is True when the address is served by a node that is not healthy,
	// because no node is (fail open: moving it would not help, dropping it is an outage).
	ConditionDegraded = "Degraded"
)

// Condition reasons of a VirtualIP.
const (
	// ReasonNoOwner: no node holds the address.
	ReasonNoOwner = "NoOwner"
	// ReasonBound: the owner holds and announces the address (Ready=True).
	ReasonBound = "Bound"
	// ReasonBinding: an owner is elected and has not confirmed the bind yet.
	ReasonBinding = "Binding"
	// ReasonAddressInUse: another, older VirtualIP has the same address (Conflict=True).
	ReasonAddressInUse = "AddressInUse"
	// ReasonAddressReserved: the address belongs to something else in the cluster: a Node
	// (status.addresses), the API server (the kubernetes Service's endpoints) or a node's
	// default gateway (NodeAgent status.gateways). Conflict=True and Ready=False, no owner,
	// also as the reason of the owner change that takes such an address away.
	ReasonAddressReserved = "AddressReserved"
	// ReasonNoConflict: no other VirtualIP has the address (Conflict=False).
	ReasonNoConflict = "NoConflict"
	// ReasonNoEligibleNode: the owner holds the address though no node passes its checks
	// (Degraded=True).
	ReasonNoEligibleNode = "NoEligibleNode"
	// ReasonOwnerEligible: the owner passes its checks (Degraded=False).
	ReasonOwnerEligible = "OwnerEligible"
)

// Preemption says whether a healthy owner gives the address up to a higher-priority node.
// +kubebuilder:validation:Enum=Never;Always
type Preemption string

const (
	// PreemptionNever keeps the address on a healthy owner (the default: fewest moves).
	PreemptionNever Preemption = "Never"
	// PreemptionAlways moves the address to a higher-priority node once it has been
	// eligible for preemptionDelay.
	PreemptionAlways Preemption = "Always"
)

// HTTPScheme is the protocol of an HTTP health check.
// +kubebuilder:validation:Enum=HTTP;HTTPS
type HTTPScheme string

// The schemes an HTTP health check speaks.
const (
	HTTPSchemeHTTP  HTTPScheme = "HTTP"
	HTTPSchemeHTTPS HTTPScheme = "HTTPS"
)

// ICMPTargetGateway as an ICMP target means the default-route gateway of the VIP's interface.
const ICMPTargetGateway = "gateway"

// VirtualIPSpec is the desired state of a VirtualIP.
//
// +kubebuilder:validation:XValidation:rule="!has(self.prefixLength) || !isIP(self.address) || ip(self.address).family() == 6 || self.prefixLength <= 32",message="prefixLength must be between 1 and 32 for an IPv4 address"
//
// The address must be a host address of its own subnet: neither the network address nor,
// for IPv4, the broadcast address (RFC 3021: /31 and /32 have neither), nor, for IPv6, the
// subnet-router anycast address that the subnet's routers answer (RFC 6164: /127 and /128
// are exempt). The API server's cost estimate knows no bound for string(int), so the
// prefix length is spelt digit by digit (no empty string literal: gofmt would turn two
// quotes in a comment into one typographic quote), IPv4 is checked with integers (the address
// modulo the size of the subnet, 2^(32-prefixLength)), and IPs are compared with == (the
// estimate of != between IPs is unbounded too).
// +kubebuilder:validation:XValidation:rule="!has(self.prefixLength) || self.prefixLength >= 31 || !isIP(self.address) || ip(self.address).family() != 4 || (int(self.address.split('.')[0]) * 16777216 + int(self.address.split('.')[1]) * 65536 + int(self.address.split('.')[2]) * 256 + int(self.address.split('.')[3])) % ([1, 2, 4, 8, 16, 32, 64, 128][(32 - self.prefixLength) % 8] * [1, 256, 65536, 16777216][(32 - self.prefixLength) / 8]) != 0",fieldPath=".address",message="address must not be the network address of its subnet (all host bits zero, such as 198.18.1.0 with prefixLength 24)",messageExpression="'address ' + self.address + ' is the network address of the /' + '1'.substring(0, self.prefixLength / 100) + '0123456789'.substring(self.prefixLength / 10 % 10, self.prefixLength / 10 % 10 + (self.prefixLength >= 10 ? 1 : 0)) + '0123456789'.substring(self.prefixLength % 10, self.prefixLength % 10 + 1) + ' subnet, not a host address: choose a host address in it, or prefixLength 31 or 32'"
// +kubebuilder:validation:XValidation:rule="!has(self.prefixLength) || self.prefixLength >= 31 || !isIP(self.address) || ip(self.address).family() != 4 || (int(self.address.split('.')[0]) * 16777216 + int(self.address.split('.')[1]) * 65536 + int(self.address.split('.')[2]) * 256 + int(self.address.split('.')[3])) % ([1, 2, 4, 8, 16, 32, 64, 128][(32 - self.prefixLength) % 8] * [1, 256, 65536, 16777216][(32 - self.prefixLength) / 8]) != ([1, 2, 4, 8, 16, 32, 64, 128][(32 - self.prefixLength) % 8] * [1, 256, 65536, 16777216][(32 - self.prefixLength) / 8]) - 1",fieldPath=".address",message="address must not be the broadcast address of its subnet (all host bits one, such as 198.18.1.255 with prefixLength 24)",messageExpression="'address ' + self.address + ' is the broadcast address of its /' + '1'.substring(0, self.prefixLength / 100) + '0123456789'.substring(self.prefixLength / 10 % 10, self.prefixLength / 10 % 10 + (self.prefixLength >= 10 ? 1 : 0)) + '0123456789'.substring(self.prefixLength % 10, self.prefixLength % 10 + 1) + ' subnet, not a host address: choose a host address in it, or prefixLength 31 or 32'"
// +kubebuilder:validation:XValidation:rule="!has(self.prefixLength) || self.prefixLength >= 127 || !isIP(self.address) || ip(self.address).family() != 6 || !(cidr(self.address + '/' + '1'.substring(0, self.prefixLength / 100) + '0123456789'.substring(self.prefixLength / 10 % 10, self.prefixLength / 10 % 10 + (self.prefixLength >= 10 ? 1 : 0)) + '0123456789'.substring(self.prefixLength % 10, self.prefixLength % 10 + 1)).masked().ip() == ip(self.address))",fieldPath=".address",message="address must not be the subnet-router anycast address of its subnet (all host bits zero, such as fd00:1:: with prefixLength 64)",messageExpression="'address ' + self.address + ' is the subnet-router anycast address of the /' + '1'.substring(0, self.prefixLength / 100) + '0123456789'.substring(self.prefixLength / 10 % 10, self.prefixLength / 10 % 10 + (self.prefixLength >= 10 ? 1 : 0)) + '0123456789'.substring(self.prefixLength % 10, self.prefixLength % 10 + 1) + ' subnet, which its routers answer: choose a host address in it, or prefixLength 127 or 128'"
// +kubebuilder:validation:XValidation:rule="!has(self.preemptionDelay) || self.preemption == 'Always'",message="preemptionDelay is only used with preemption: Always"
type VirtualIPSpec struct {
	// address is the virtual IP: one IPv4 or IPv6 address in canonical form, without a
	// prefix. It cannot be changed; create another VirtualIP for another address. An address
	// that belongs to something else (a node, the API server, a node's gateway) is refused
	// by the controller: condition Conflict with reason AddressReserved.
	// +required
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="!self.contains('/')",message="address must be a single IPv4 or IPv6 address, not a CIDR; put the prefix in prefixLength"
	// +kubebuilder:validation:XValidation:rule="self.contains('/') || isIP(self)",message="address must be an IPv4 or IPv6 address, such as 198.18.1.10 or fd00::10"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || string(ip(self)) == self",message="address must be written in canonical form (lower case, shortest IPv6 form, no leading zeros)"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || !ip(self).isUnspecified()",message="address must not be the unspecified address (0.0.0.0 or ::)"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || !ip(self).isLoopback()",message="address must not be a loopback address (127.0.0.0/8 or ::1)"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || !(ip(self).isLinkLocalUnicast() || ip(self).isLinkLocalMulticast())",message="address must not be a link-local address (169.254.0.0/16 or fe80::/10)"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip(self).isUnspecified() || ip(self).isLoopback() || ip(self).isLinkLocalUnicast() || ip(self).isLinkLocalMulticast() || ip(self).isGlobalUnicast()",message="address must not be a multicast or broadcast address"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || !cidr('0.0.0.0/8').containsIP(self)",message="address must not be in 0.0.0.0/8, which means 'this network' and is never the address of a host"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || !cidr('240.0.0.0/4').containsIP(self)",message="address must not be in 240.0.0.0/4, which is reserved: most hosts and routers drop it"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="address is immutable: create a new VirtualIP for a different address"
	Address string `json:"address"`

	// prefixLength is the prefix length the address is bound with. When unset it is 32 for
	// IPv4 and 128 for IPv6 (see EffectivePrefixLength): the schema cannot default by family.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	PrefixLength *int32 `json:"prefixLength,omitempty"`

	// interface is the node interface to bind the address on. When unset, each node uses
	// the interface whose configured subnet contains the address; a node with no such
	// interface is not eligible.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="!self.contains('/') && !self.contains(':') && !self.contains(' ') && self != '.' && self != '..'",message="interface must be a Linux interface name (at most 15 characters, without '/', ':' or spaces)"
	Interface string `json:"interface,omitempty"`

	// nodeSelector limits the nodes that may hold the address. When unset, every node
	// running a Vigil agent may.
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`

	// priorities give matching nodes a priority other than the default 100. A node takes
	// the highest priority among the rules it matches; the highest eligible node wins.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Priorities []PriorityRule `json:"priorities,omitempty"`

	// preemption says whether a healthy owner gives the address to a higher-priority node:
	// Never (default) keeps it where it is; Always moves it once the better node has been
	// eligible for preemptionDelay.
	// +optional
	// +kubebuilder:default=Never
	Preemption Preemption `json:"preemption,omitempty"`

	// preemptionDelay is how long a higher-priority node must have been eligible before it
	// takes the address over. Only with preemption: Always; unset means 0s.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="preemptionDelay must be a duration such as 30s or 5m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) <= duration('24h')",message="preemptionDelay must be at most 24h"
	PreemptionDelay *metav1.Duration `json:"preemptionDelay,omitempty"`

	// healthChecks decide whether a node may hold the address: it is eligible only while
	// all of them pass on it.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	HealthChecks []HealthCheck `json:"healthChecks,omitempty"`

	// announce controls the gratuitous ARP / unsolicited neighbour advertisements sent when
	// a node takes the address.
	// +optional
	// +kubebuilder:default={}
	Announce Announce `json:"announce,omitzero"`
}

// PriorityRule gives the nodes matching a selector a priority.
type PriorityRule struct {
	// nodeSelector selects the nodes this rule applies to.
	// +required
	NodeSelector metav1.LabelSelector `json:"nodeSelector"`

	// priority of the matching nodes, 1..255 (the default priority is 100).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=255
	Priority int32 `json:"priority"`
}

// HealthCheck is one probe run by the agent on every candidate node. It has exactly one of
// icmp, tcp or http.
//
// +kubebuilder:validation:XValidation:rule="(has(self.icmp) ? 1 : 0) + (has(self.tcp) ? 1 : 0) + (has(self.http) ? 1 : 0) == 1",message="a health check needs exactly one of icmp, tcp or http"
// +kubebuilder:validation:XValidation:rule="!has(self.timeout) || !self.timeout.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || !self.interval.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.timeout) <= duration(self.interval)",message="timeout must not be longer than interval"
type HealthCheck struct {
	// name identifies the check in status, Events and logs; unique within the list.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="name must be lower-case letters, digits and '-', starting and ending with a letter or digit"
	Name string `json:"name"`

	// icmp sends an echo request and expects a reply.
	// +optional
	ICMP *ICMPCheck `json:"icmp,omitempty"`

	// tcp opens a TCP connection.
	// +optional
	TCP *TCPCheck `json:"tcp,omitempty"`

	// http sends a GET request and checks the status code.
	// +optional
	HTTP *HTTPCheck `json:"http,omitempty"`

	// interval between two probes; at least 100ms.
	// +optional
	// +kubebuilder:default="1s"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="interval must be a duration such as 500ms, 1s or 2m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) >= duration('100ms')",message="interval must be at least 100ms"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) <= duration('1h')",message="interval must be at most 1h"
	Interval metav1.Duration `json:"interval,omitzero"`

	// timeout of one probe; at most interval. When unset it is 1s, or interval if that is
	// shorter (see EffectiveTimeout), so that a short interval alone is valid.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="timeout must be a duration such as 200ms or 1s"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) >= duration('10ms')",message="timeout must be at least 10ms"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// failureThreshold is how many failed probes in a row make a passing check fail
	// (keepalived's "fall").
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	FailureThreshold int32 `json:"failureThreshold,omitempty"`

	// successThreshold is how many successful probes in a row make a failing check pass
	// (keepalived's "rise").
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	SuccessThreshold int32 `json:"successThreshold,omitempty"`
}

// ICMPCheck pings a target.
type ICMPCheck struct {
	// target is an IP address, or "gateway" for the default-route gateway of the interface
	// the VIP is bound on.
	// +required
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="self == 'gateway' || isIP(self)",message="target must be an IP address or the word gateway"
	Target string `json:"target"`
}

// TCPCheck connects to host:port.
type TCPCheck struct {
	// port to connect to.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// host to connect to: an IP address or a DNS name.
	// +optional
	// +kubebuilder:default="127.0.0.1"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="isIP(self) || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="host must be an IP address or a DNS name"
	Host string `json:"host,omitempty"`
}

// HTTPCheck sends GET scheme://host:port/path.
//
// +kubebuilder:validation:XValidation:rule="!has(self.insecureSkipVerify) || !self.insecureSkipVerify || self.scheme == 'HTTPS'",message="insecureSkipVerify only applies to scheme HTTPS"
type HTTPCheck struct {
	// port to connect to.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// path of the request.
	// +optional
	// +kubebuilder:default="/"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="path must start with '/'"
	Path string `json:"path,omitempty"`

	// scheme is HTTP or HTTPS.
	// +optional
	// +kubebuilder:default=HTTP
	Scheme HTTPScheme `json:"scheme,omitempty"`

	// host to connect to: an IP address or a DNS name.
	// +optional
	// +kubebuilder:default="127.0.0.1"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="isIP(self) || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="host must be an IP address or a DNS name"
	Host string `json:"host,omitempty"`

	// hostHeader is sent as the Host header (and TLS server name) instead of host.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?$')",message="hostHeader must be a DNS name, optionally with :port"
	HostHeader string `json:"hostHeader,omitempty"`

	// expectedStatuses are the status codes that count as success; when unset, any 2xx.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Minimum=100
	// +kubebuilder:validation:items:Maximum=599
	ExpectedStatuses []int32 `json:"expectedStatuses,omitempty"`

	// insecureSkipVerify turns off TLS certificate verification (HTTPS only).
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// Announce controls gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6).
type Announce struct {
	// count of announcements sent in a burst when a node takes the address; the first one
	// goes out at once.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Count int32 `json:"count,omitempty"`

	// interval between the announcements of a burst.
	// +optional
	// +kubebuilder:default="100ms"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="announce interval must be a duration such as 100ms"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('10ms') && duration(self) <= duration('10s'))",message="announce interval must be between 10ms and 10s"
	Interval metav1.Duration `json:"interval,omitzero"`

	// refreshInterval re-announces the address periodically while a node holds it;
	// 0s turns it off.
	// +optional
	// +kubebuilder:default="0s"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="refreshInterval must be a duration such as 0s, 30s or 5m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) == duration('0s') || (duration(self) >= duration('1s') && duration(self) <= duration('24h'))",message="refreshInterval must be 0s (off) or between 1s and 24h"
	RefreshInterval metav1.Duration `json:"refreshInterval,omitzero"`
}

// Reasons of an owner change (status.lastTransition.reason, also the reason of the
// Event the controller records).
const (
	ReasonElected        = "Elected"        // the VIP had no owner
	ReasonOwnerLost      = "OwnerLost"      // the owner's agent is dead
	ReasonOwnerUnhealthy = "OwnerUnhealthy" // the owner failed a check or lost its interface
	ReasonOwnerDraining  = "OwnerDraining"  // the owner is handing over (SIGTERM, cordon)
	ReasonPreempted      = "Preempted"      // a higher-priority node took it (preemption: Always)
	ReasonNotSelected    = "NotSelected"    // the owner no longer matches nodeSelector
	ReasonNoCandidate    = "NoCandidate"    // no live agent may hold it
	// ReasonTakenOver: a standby took the address from a dead owner while no controller
	// could decide (API server down, or no leader), and the controller confirms it.
	ReasonTakenOver = "TakenOver"
	// ReasonAddressInUse and ReasonAddressReserved (above) also take an address away.
)

// OwnerTransition records the last change of owner.
type OwnerTransition struct {
	// time of the change.
	// +required
	Time metav1.Time `json:"time"`

	// from is the previous owner ("" = nobody).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	From string `json:"from,omitempty"`

	// to is the new owner ("" = nobody).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	To string `json:"to,omitempty"`

	// reason of the change, a CamelCase word such as OwnerLost.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason"`
}

// VirtualIPStatus is the observed state of a VirtualIP.
type VirtualIPStatus struct {
	// owner is the node that holds the address now ("" = nobody).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Owner string `json:"owner,omitempty"`

	// epoch increments on every change of owner; agents bind only for the newest epoch
	// they have seen (a fencing token).
	// +optional
	// +kubebuilder:validation:Minimum=0
	Epoch int64 `json:"epoch,omitempty"`

	// interface is where the owner has bound the address.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	Interface string `json:"interface,omitempty"`

	// standbys are the other eligible nodes, in takeover order: the first 16 (MaxStandbys)
	// of them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=253
	Standbys []string `json:"standbys,omitempty"`

	// lastTransition is the last change of owner.
	// +optional
	LastTransition *OwnerTransition `json:"lastTransition,omitempty"`

	// observedGeneration is the spec generation this status was computed from.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Conflict, Degraded.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// VirtualIP is an IP address that Vigil keeps bound on exactly one healthy node.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=vip,categories=vigil
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.address`
// +kubebuilder:printcolumn:name="Owner",type=string,JSONPath=`.status.owner`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Interface",type=string,JSONPath=`.status.interface`,priority=1
// +kubebuilder:printcolumn:name="Epoch",type=integer,JSONPath=`.status.epoch`,priority=1
// +kubebuilder:printcolumn:name="Standbys",type=string,JSONPath=`.status.standbys`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VirtualIP struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec VirtualIPSpec `json:"spec"`

	// status is the observed state, written by the controller.
	// +optional
	Status VirtualIPStatus `json:"status,omitzero"`
}

// VirtualIPList is a list of VirtualIPs.
//
// +kubebuilder:object:root=true
type VirtualIPList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualIP `json:"items"`
}
