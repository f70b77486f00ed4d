package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/controllers"
)

// liveAgents makes every agent with a heartbeat in the last minute alive.
func liveAgents(r *controllers.VirtualIPReconciler) { r.HeartbeatTimeout = time.Minute }

// create creates obj; the test deletes it when it ends.
func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %s: %v", obj.GetName(), err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
}

// createNode creates a Node with these status addresses; the test deletes it.
func createNode(t *testing.T, name string, labels map[string]string, addrs ...corev1.NodeAddress) *corev1.Node {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	create(t, n)
	if len(addrs) > 0 {
		setNodeAddresses(t, n, addrs...)
	}
	return n
}

func setNodeAddresses(t *testing.T, n *corev1.Node, addrs ...corev1.NodeAddress) {
	t.Helper()
	n.Status.Addresses = addrs
	if err := env.Client.Status().Update(context.Background(), n); err != nil {
		t.Fatalf("setting the addresses of Node %s: %v", n.Name, err)
	}
}

// createAgent creates a NodeAgent with a fresh heartbeat that reports vips eligible.
func createAgent(t *testing.T, name string, labels map[string]string, gateways []string, vips ...string) *vigilv1.NodeAgent {
	t.Helper()
	a := &vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	create(t, a)
	now := time.Now()
	a.Status = vigilv1.NodeAgentStatus{HeartbeatTime: metav1.NewTime(now), Gateways: gateways}
	for _, v := range vips {
		a.Status.VIPs = append(a.Status.VIPs, vigilv1.VIPEligibility{Name: v, Eligible: true, Since: metav1.NewMicroTime(now.Add(-time.Minute)), Reason: "all health checks passing"})
	}
	if err := env.Client.Status().Update(context.Background(), a); err != nil {
		t.Fatalf("writing the status of NodeAgent %s: %v", name, err)
	}
	return a
}

func createVIP(t *testing.T, name, address string) {
	t.Helper()
	create(t, &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: vigilv1.VirtualIPSpec{Address: address}})
}

// waitFor polls the VirtualIP until ok says its status is as wanted, and returns it.
func waitFor(t *testing.T, name, what string, ok func(*vigilv1.VirtualIP) bool) *vigilv1.VirtualIP {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var vip vigilv1.VirtualIP
		if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, &vip); err != nil {
			t.Fatal(err)
		}
		if ok(&vip) {
			return &vip
		}
		if time.Now().After(deadline) {
			t.Fatalf("VirtualIP %s never got %s: %+v", name, what, vip.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForEvent reads the recorded Events until want (other VirtualIPs' moves pass by).
func waitForEvent(t *testing.T, recorder *events.FakeRecorder, want string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	var seen []string
	for {
		select {
		case e := <-recorder.Events:
			if e == want {
				return
			}
			seen = append(seen, e)
		case <-timeout:
			t.Errorf("no Event %q; saw %q", want, seen)
			return
		}
	}
}

func reservedWith(message string) func(*vigilv1.VirtualIP) bool {
	return func(v *vigilv1.VirtualIP) bool {
		c := meta.FindStatusCondition(v.Status.Conditions, vigilv1.ConditionConflict)
		r := meta.FindStatusCondition(v.Status.Conditions, vigilv1.ConditionReady)
		return c != nil && r != nil && v.Status.Owner == "" &&
			c.Status == metav1.ConditionTrue && c.Reason == vigilv1.ReasonAddressReserved && c.Message == message &&
			r.Status == metav1.ConditionFalse && r.Reason == vigilv1.ReasonAddressReserved
	}
}

func ownedBy(node string) func(*vigilv1.VirtualIP) bool {
	return func(v *vigilv1.VirtualIP) bool { return v.Status.Owner == node }
}

// A VirtualIP with a Node's InternalIP gets no owner, though an eligible agent would take
// it, and says why; it is elected once the node lets go of the address, and taken away
// again when a node takes it back.
func TestVirtualIPWithANodesAddressIsNeverElected(t *testing.T) {
	recorder := events.NewFakeRecorder(100)
	startReconciler(t, liveAgents, func(r *controllers.VirtualIPReconciler) { r.Recorder = recorder })
	node := createNode(t, "reserved-a", nil, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "198.18.3.11"})
	createAgent(t, "reserved-a", nil, nil, "reserved-node-ip", "reserved-control")
	createVIP(t, "reserved-control", "198.18.3.12")
	createVIP(t, "reserved-node-ip", "198.18.3.11")

	waitFor(t, "reserved-control", "an owner", ownedBy("reserved-a")) // the agent is a candidate
	msg := "198.18.3.11 is the InternalIP of Node reserved-a; this VirtualIP is not bound"
	waitFor(t, "reserved-node-ip", "Conflict=True AddressReserved and no owner", reservedWith(msg))
	waitForEvent(t, recorder, "Warning AddressReserved 198.18.3.11 is the InternalIP of Node reserved-a; this VirtualIP is not bound while it is")

	setNodeAddresses(t, node, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "198.18.3.99"})
	waitFor(t, "reserved-node-ip", "an owner once the node let go of the address", ownedBy("reserved-a"))

	setNodeAddresses(t, node, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "198.18.3.11"})
	got := waitFor(t, "reserved-node-ip", "the address taken away again",
		reservedWith("198.18.3.11 is the ExternalIP of Node reserved-a; this VirtualIP is not bound"))
	if tr := got.Status.LastTransition; tr == nil || tr.Reason != vigilv1.ReasonAddressReserved || tr.From != "reserved-a" {
		t.Errorf("last transition %+v, want from reserved-a with reason %s", tr, vigilv1.ReasonAddressReserved)
	}
}

// The API server's addresses (the kubernetes Service's EndpointSlices, read through the
// controller's narrowed cache) and the gateways the agents report are reserved too, and a
// change of either is seen without any other event.
func TestAPIServerAndGatewayAddressesAreNeverElected(t *testing.T) {
	ctx := context.Background()
	startReconciler(t, liveAgents)
	createNode(t, "reserved-b", nil)
	createAgent(t, "reserved-b", nil, []string{"198.18.4.1", "fd00:198:18:4::1"}, "reserved-api", "reserved-gw", "reserved-gw6")
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "kubernetes-test", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"198.18.4.2"}}},
	}
	create(t, slice)
	createVIP(t, "reserved-api", "198.18.4.2")
	createVIP(t, "reserved-gw", "198.18.4.1")
	createVIP(t, "reserved-gw6", "fd00:198:18:4::1")

	waitFor(t, "reserved-api", "the API server's address reserved",
		reservedWith("198.18.4.2 is an address of the kubernetes Service (the API server); this VirtualIP is not bound"))
	waitFor(t, "reserved-gw", "the gateway reserved", reservedWith("198.18.4.1 is the default gateway of node reserved-b; this VirtualIP is not bound"))
	waitFor(t, "reserved-gw6", "the IPv6 gateway reserved",
		reservedWith("fd00:198:18:4::1 is the default gateway of node reserved-b; this VirtualIP is not bound"))

	// The API server moves: only the EndpointSlice changes, and the VIP is free.
	slice.Endpoints[0].Addresses = []string{"198.18.4.3"}
	if err := env.Client.Update(ctx, slice); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reserved-api", "an owner once the API server moved", ownedBy("reserved-b"))
}

// A report longer than the schema takes is refused by the API server; the agent cuts it
// with Truncate (in mergeReport), and the cut one is accepted.
func TestReasonCutByTheAgentIsAccepted(t *testing.T) {
	ctx := context.Background()
	a := createAgent(t, "long-reason", nil, nil, "long-reason-vip")
	long := fmt.Sprintf("http 127.0.0.1:8080/healthz: status 503: %s", strings.Repeat("upstream unavailable ", 250))
	if len(long) < 5000 {
		t.Fatalf("test reason is only %d bytes", len(long))
	}
	a.Status.VIPs[0].Reason = long
	if err := env.Client.Status().Update(ctx, a); err == nil {
		t.Fatalf("a %d-byte reason was accepted: the limit is not where the agent thinks", len(long))
	}
	var fresh vigilv1.NodeAgent
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(a), &fresh); err != nil {
		t.Fatal(err)
	}
	fresh.Status.VIPs[0].Reason = vigilv1.Truncate(long, vigilv1.MaxReasonLength)
	if err := env.Client.Status().Update(ctx, &fresh); err != nil {
		t.Fatalf("the reason as the agent cuts it was refused: %v", err)
	}
}

// Two VirtualIPs with one address: the older keeps it and the newer says Conflict; once
// the older is deleted, the newer is elected without any change of its own (the address
// index finds it from the older one's deletion).
func TestTheNewerVirtualIPWithAnAddressTakesItWhenTheOlderGoes(t *testing.T) {
	startReconciler(t, liveAgents)
	createNode(t, "same-a", nil)
	createAgent(t, "same-a", nil, nil, "same-older", "same-newer")
	older := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "same-older"}, Spec: vigilv1.VirtualIPSpec{Address: "198.18.3.40"}}
	create(t, older)
	waitFor(t, "same-older", "an owner", ownedBy("same-a"))
	time.Sleep(1100 * time.Millisecond) // creation times have a resolution of a second
	createVIP(t, "same-newer", "198.18.3.40")
	waitFor(t, "same-newer", "Conflict=True and no owner", func(v *vigilv1.VirtualIP) bool {
		return v.Status.Owner == "" && meta.IsStatusConditionTrue(v.Status.Conditions, vigilv1.ConditionConflict)
	})
	if err := env.Client.Delete(context.Background(), older); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "same-newer", "an owner once the older VirtualIP is gone", ownedBy("same-a"))
}
