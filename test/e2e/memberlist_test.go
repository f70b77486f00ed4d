package e2e

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
	"vigil.dev/vigil/test/lab"
)

// The memberlist key is rotated as docs/operations.md says, one step at a time, each
// once every member shows it in vigil_memberlist_keys: no member is ever declared dead,
// the VIP never moves and the client never fails. Afterwards, memberlist members with the
// rotated-out key, another key or none cannot join, and nobody's view changes. (And the
// agents' listeners are on their node's address only.)
func TestMemberlistKeyRotationKeepsEveryMemberAndOutsidersOut(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 3)
	// A key split shows at once as packets a member cannot decrypt, and as deaths once it
	// lasts a few probes. Probes more patient than the defaults keep a CPU-starved machine
	// (tests run in parallel) from declaring deaths that have nothing to do with keys.
	inst := e.installVigil("--set", "metrics.secure=false",
		"--set", "memberlist.probeInterval=500ms,memberlist.probeTimeout=400ms,memberlist.suspicionMult=4")
	e.startVigil()
	v4 := lab.VIPv4(40)
	e.apply(webVIP("web", v4))
	e.owner(v4, 5*time.Second)
	time.Sleep(time.Second)
	epoch := e.get("web").Status.Epoch
	rec := e.record(v4, 3*time.Minute)
	e.waitSteady(rec, 20)
	members := e.memberlistMembers(inst)
	before := e.memberlistCounters(members)
	e.expectListenersOnTheNodeAddress("node-a", inst)

	// The steps of docs/operations.md, with its kubectl commands.
	dir := t.TempDir()
	old := e.readKeys()
	e.shell(dir, "kubectl -n $NS get secret vigil-memberlist -o jsonpath='{.data.keys}' | base64 -d > keys\n"+
		"head -c 32 /dev/urandom | base64 > new")
	for _, step := range []struct{ name, script, file string }{
		{"add the new key second", "cat keys new > step1 && replace step1", "step1"},
		{"make the new key primary", "cat new keys > step2 && replace step2", "step2"},
		{"remove the old key", "replace new", "new"},
	} {
		start := time.Now()
		e.shell(dir, step.script)
		e.waitKeyring(members, readKeyFile(t, filepath.Join(dir, step.file)), 30*time.Second)
		t.Logf("%s: every member has it after %v", step.name, time.Since(start).Round(time.Millisecond))
	}
	if got := e.readKeys(); len(got) != 1 || bytes.Equal(got[0], old[0]) {
		t.Fatalf("after the rotation the Secret holds %d keys, the old one: %v", len(got), bytes.Equal(got[0], old[0]))
	}
	time.Sleep(2 * time.Second)
	samples, err := rec.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if failed := failures(samples); failed > 0 || len(samples) < 100 {
		t.Errorf("the client saw %d failed of %d requests during the rotation, want 0", failed, len(samples))
	}
	if now := e.get("web").Status.Epoch; now != epoch {
		t.Errorf("the VIP moved during the rotation: epoch %d -> %d (%+v)", epoch, now, e.get("web").Status.LastTransition)
	}
	e.expectUnchanged(members, before, "the rotation")
	e.expectNoUndecryptable("the rotation")

	// Outsiders: the rotated-out key, a key of their own, no encryption.
	var na vigilv1.NodeAgent
	if err := e.c.Get(ctx, client.ObjectKey{Name: "node-a"}, &na); err != nil {
		t.Fatal(err)
	}
	stranger, _ := membership.NewKey()
	for name, key := range map[string][]byte{"the rotated-out key": old[0], "a key of its own": stranger, "no key": nil} {
		out, err := e.l.MemberlistOutsider("cp", key, na.Status.MemberlistAddress, 3*time.Second)
		if err != nil {
			t.Fatalf("outsider with %s: %v\n%s", name, err, out)
		}
		if !strings.Contains(out, "join failed:") || !strings.Contains(out, "members: outsider\n") {
			t.Errorf("outsider with %s joined:\n%s", name, out)
		}
		t.Logf("outsider with %s: %s", name, firstLine(out, "join"))
	}
	e.expectUnchanged(members, before, "the outsiders' attempts")
	for _, n := range e.l.Nodes {
		if p, ok := e.l.Process(n.Name + "/vigil-agent"); ok && strings.Contains(p.Log(), `"member":"outsider"`) {
			t.Errorf("%s's agent saw the outsider as a member", n.Name)
		}
	}
}
