package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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
	inst, err := e.l.InstallVigil(ctx, "--set", "metrics.secure=false",
		"--set", "memberlist.probeInterval=500ms,memberlist.probeTimeout=400ms,memberlist.suspicionMult=4")
	if err != nil {
		t.Fatal(err)
	}
	e.startVigil()
	v4 := lab.VIPv4(40)
	e.apply(webVIP("web", v4))
	e.owner(v4, 5*time.Second)
	time.Sleep(time.Second)
	epoch := e.get("web").Status.Epoch
	rec, err := e.l.StartRecorder(lab.RecordOptions{URL: url(v4), Duration: 3 * time.Minute, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = rec.Stop() }()
	if _, err := rec.WaitFor(5*time.Second, func(s []lab.Sample) bool { return len(s) > 20 && s[len(s)-1].OK }); err != nil {
		t.Fatal(err)
	}
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

// expectNoUndecryptable: no member received a packet or stream it could not decrypt,
// which is how a key split shows (memberlist logs it as an error).
func (e *env) expectNoUndecryptable(during string) {
	e.t.Helper()
	procs := []string{"cp/vigil-controller"}
	for _, n := range e.l.Nodes {
		procs = append(procs, n.Name+"/vigil-agent")
	}
	for _, name := range procs {
		p, ok := e.l.Process(name)
		if !ok {
			e.t.Fatalf("no process %s", name)
		}
		if line := firstLine(p.Log(), "", "no installed keys could decrypt"); line != "" {
			e.t.Errorf("%s could not decrypt a member's message during %s: %s", name, during, line)
		}
	}
}

// expectListenersOnTheNodeAddress: the agent's metrics, health and memberlist sockets
// listen on the node's address (the chart's --bind-address=$(HOST_IP)), none on all
// addresses.
func (e *env) expectListenersOnTheNodeAddress(node string, inst *lab.Installation) {
	e.t.Helper()
	n, err := e.l.Node(node)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := e.l.Exec(node, "ss", "-Hlntu")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, port := range []int{inst.Agent.MetricsPort, inst.Agent.HealthPort, 7952} {
		var locals []string
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasSuffix(f[4], ":"+strconv.Itoa(port)) {
				locals = append(locals, f[0]+" "+f[4])
			}
		}
		for _, l := range locals {
			if !strings.HasSuffix(l, " "+n.IPv4.String()+":"+strconv.Itoa(port)) {
				e.t.Errorf("%s: port %d listens on %s, want %s only", node, port, l, n.IPv4)
			}
		}
		if len(locals) == 0 {
			e.t.Errorf("%s: nothing listens on port %d:\n%s", node, port, out)
		}
	}
}

// member is a memberlist member of Vigil: an agent or the controller, and where it runs.
type member struct {
	m *lab.Member
	w *lab.Workload
}

func (e *env) memberlistMembers(inst *lab.Installation) map[string]member {
	out := map[string]member{"controller": {e.l.ControlPlane, &inst.Controller}}
	for _, n := range e.l.Nodes {
		out[n.Name] = member{n, &inst.Agent}
	}
	return out
}

func (e *env) readKeys() [][]byte {
	e.t.Helper()
	keys, err := membership.ReadKeys(context.Background(), e.c, lab.VigilNamespace)
	if err != nil {
		e.t.Fatal(err)
	}
	return keys
}

// rotationShell defines what docs/operations.md's rotation defines.
const rotationShell = `replace() { kubectl -n $NS create secret generic vigil-memberlist --from-file=keys="$1" --dry-run=client -o yaml | kubectl replace -f -; }`

// shell runs a script of the documented rotation in dir, with kubectl and the admin's
// kubeconfig, inside the control-plane namespace (where the API server is).
func (e *env) shell(dir, script string) {
	e.t.Helper()
	full := fmt.Sprintf("set -euo pipefail\ncd %q\nexport PATH=%q:$PATH KUBECONFIG=%q NS=%s\n%s\n%s\n",
		dir, e.l.Assets, e.l.Kubeconfig, lab.VigilNamespace, rotationShell, script)
	if out, err := e.l.Exec("cp", "bash", "-c", full); err != nil {
		e.t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

func readKeyFile(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := membership.ParseKeys(map[string][]byte{"keys": b})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return keys
}

var keySeries = regexp.MustCompile(`(?m)^vigil_memberlist_keys\{fingerprint="([0-9a-f]+)",primary="(true|false)"\} 1$`)

// keyring is a member's vigil_memberlist_keys: fingerprints, the primary first.
func (e *env) keyring(m member) ([]string, error) {
	body, err := e.l.ScrapeMetrics(context.Background(), m.m, m.w, false, "")
	if err != nil {
		return nil, err
	}
	var primary, others []string
	for _, s := range keySeries.FindAllStringSubmatch(body, -1) {
		if s[2] == "true" {
			primary = append(primary, s[1])
		} else {
			others = append(others, s[1])
		}
	}
	slices.Sort(others)
	return append(primary, others...), nil
}

// waitKeyring waits until every member's metric shows the keyring, as an operator would.
func (e *env) waitKeyring(members map[string]member, keys [][]byte, within time.Duration) {
	e.t.Helper()
	want := []string{membership.Fingerprint(keys[0])}
	for _, k := range keys[1:] {
		want = append(want, membership.Fingerprint(k))
	}
	slices.Sort(want[1:])
	deadline := time.Now().Add(within)
	for name, m := range members {
		for {
			got, err := e.keyring(m)
			if err == nil && slices.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("%s: vigil_memberlist_keys %v (%v) after %v, want %v", name, got, err, within, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// memberlistCounters are, per member, its members by state and the dead messages it
// processed.
func (e *env) memberlistCounters(members map[string]member) map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for name, m := range members {
		body, err := e.l.ScrapeMetrics(context.Background(), m.m, m.w, false, "")
		if err != nil {
			e.t.Fatal(err)
		}
		out[name] = fmt.Sprintf("alive %s, dead %s, dead messages %s",
			sample(body, `vigil_memberlist_members{state="alive"}`), sample(body, `vigil_memberlist_members{state="dead"}`),
			sample(body, `vigil_memberlist_messages_total{type="dead"}`))
	}
	return out
}

// expectUnchanged: every member still sees the others alive, and nobody died meanwhile.
func (e *env) expectUnchanged(members map[string]member, before map[string]string, during string) {
	e.t.Helper()
	want := fmt.Sprintf("alive %d, dead 0, dead messages 0", len(members))
	for name, now := range e.memberlistCounters(members) {
		if now != before[name] || now != want {
			e.t.Errorf("%s: memberlist %q before %s, %q after; want %q throughout", name, before[name], during, now, want)
		}
	}
}

// sample is the value of one series in a /metrics body, "0" when absent.
func sample(body, series string) string {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return strconv.FormatFloat(f, 'f', -1, 64)
			}
		}
	}
	return "0"
}

func failures(samples []lab.Sample) int {
	n := 0
	for _, s := range samples {
		if !s.OK {
			n++
		}
	}
	return n
}

// firstLine is the first line of s that starts with prefix and contains every one of words.
func firstLine(s, prefix string, words ...string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) && containsAll(line, words) {
			return line
		}
	}
	return ""
}
