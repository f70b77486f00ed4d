// Package agent is Vigil's node agent, run on every node by a DaemonSet on the host
// network. It makes its node hold exactly the VIPs it should, the way the controller's
// reconciler elects: read, decide, apply, report.
//
//   - read: the VirtualIPs and NodeAgents (cache), the node's labels and links, memberlist's
//     view of the peers, whether the API server answers, the health checks' verdicts;
//   - decide: Decide, a pure function with a table test beside it, chooses the addresses
//     to hold (announced, or quietly during a planned move), the forwarding rules of a
//     planned move, the checks to run and the node's eligibility per VirtualIP;
//   - apply: the nftables forwarder (package handover), the addresses and announcements
//     (package dataplane, over address and announce), the probes (package probe);
//   - report: the node's eligibility in its NodeAgent, written on transitions only.
//
// Around it: memberlist membership (gossip.go), the fence that releases everything when the
// node is isolated (fence.go), the handover on SIGTERM (handover.go), and the wiring
// (run.go).
package agent
