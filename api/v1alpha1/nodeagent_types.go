package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// NoVerdictYet is the reason of a check that has not run yet (see VIPEligibility.pending).
const NoVerdictYet = "no verdict yet"

// VIPEligibility is whether a node may hold one VirtualIP.
type VIPEligibility struct {
	// name of the VirtualIP.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// uid of the VirtualIP: a VirtualIP deleted and created again under its name is
	// another object, and what a node reported on the old one says nothing of the new.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=128
	UID types.UID `json:"uid,omitempty"`

	// eligible is true while the node matches, has the interface and passes every check.
	// +required
	Eligible bool `json:"eligible"`

	// pending is true while some of the node's checks for this VirtualIP have no first
	// verdict (they just started) and none fails: the node is not eligible, and not a
	// candidate at all until its first verdict.
	// +optional
	Pending bool `json:"pending,omitempty"`

	// since is when eligible last changed, as the agent's clock says (for people: the
	// controller measures preemptionDelay on its own clock).
	// +required
	Since metav1.MicroTime `json:"since"`

	// reason says why the node is not eligible (or what made it eligible), cut to 1024
	// characters (MaxReasonLength).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`

	// interface the address is (or would be) bound on.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	Interface string `json:"interface,omitempty"`

	// hardwareAddress is the link-layer address of interface. A new owner taking the VIP
	// from this node in a planned move forwards this node's open connections to it.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	HardwareAddress string `json:"hardwareAddress,omitempty"`

	// boundEpoch is the epoch at which this node holds the address, 0 when it does not.
	// +optional
	// +kubebuilder:validation:Minimum=0
	BoundEpoch int64 `json:"boundEpoch,omitempty"`
}

// NodeAgentStatus is what a node's agent reports.
type NodeAgentStatus struct {
	// heartbeatTime is renewed by the agent periodically; the controller uses it to tell a
	// live agent when memberlist cannot.
	// +optional
	HeartbeatTime metav1.Time `json:"heartbeatTime,omitzero"`

	// draining is true while the agent hands its VIPs over before stopping, or while the
	// node is cordoned.
	// +optional
	Draining bool `json:"draining,omitempty"`

	// memberlistAddress is host:port of the agent's memberlist member.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	MemberlistAddress string `json:"memberlistAddress,omitempty"`

	// gateways are the node's default gateways (IPv4 and IPv6), as the agent sees them. The
	// controller refuses a VirtualIP with one of these addresses (reason AddressReserved).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=4
	// +kubebuilder:validation:items:MaxLength=45
	Gateways []string `json:"gateways,omitempty"`

	// vips is the node's eligibility for each VirtualIP it may hold, written on transitions.
	// Once omitSettledAfter is set, the VirtualIPs the node is eligible for and does not
	// hold are left out when they are older than that.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=10000
	VIPs []VIPEligibility `json:"vips,omitempty"`

	// omitSettledAfter says that the agent has judged every VirtualIP the node may hold and
	// leaves out of vips the ones created more than this long ago that the node is eligible
	// for and does not hold: with a thousand VirtualIPs a report listing each is a quarter
	// of a megabyte, written on every change and sent to every watcher. A VirtualIP that
	// old without an entry is one the node is eligible for and does not hold. Absent: the
	// agent has not judged the VirtualIPs yet, and one without an entry has no report.
	// +optional
	OmitSettledAfter *metav1.Duration `json:"omitSettledAfter,omitempty"`
}

// NodeAgent is one node's Vigil agent state: liveness, draining and per-VIP eligibility.
// Its name is the node's name. The agent writes it on transitions and heartbeats only.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=vna,categories=vigil
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Heartbeat",type=date,JSONPath=`.status.heartbeatTime`
// +kubebuilder:printcolumn:name="Draining",type=boolean,JSONPath=`.status.draining`
// +kubebuilder:printcolumn:name="Memberlist",type=string,JSONPath=`.status.memberlistAddress`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NodeAgent struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// status is written by the node's agent.
	// +optional
	Status NodeAgentStatus `json:"status,omitzero"`
}

// NodeAgentList is a list of NodeAgents.
//
// +kubebuilder:object:root=true
type NodeAgentList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeAgent `json:"items"`
}
