package controllers

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
	"vigil.dev/vigil/internal/promutil"
	"vigil.dev/vigil/internal/version"
)

// metrics are the controller's vigil_* metrics. Per-VirtualIP series are labelled with the
// VirtualIP's name, never its address. A nil *metrics records nothing (tests).
type metrics struct {
	ownerChanges *prometheus.CounterVec
	failover     *prometheus.HistogramVec
	decisions    *prometheus.CounterVec
	leader       prometheus.Gauge
	silentNodes  prometheus.Gauge

	mu    sync.Mutex
	binds map[string]pendingBind // VirtualIP name -> the move waiting for its bind report
	alive map[string]bool        // NodeAgent name -> alive, as the liveness watcher last saw it
}

// failoverBuckets span a sub-second memberlist failover to a 30 s heartbeat timeout.
var failoverBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 20, 30}

// newMetrics returns the controller's metrics, not registered yet.
func newMetrics() *metrics {
	return &metrics{
		ownerChanges: promutil.CounterVec("vigil_virtualip_owner_changes_total", "Owner changes decided by this controller, by reason (Elected, OwnerLost, OwnerUnhealthy, OwnerDraining, Preempted, NotSelected, NoCandidate, AddressInUse).", "reason"),
		failover:     promutil.HistogramVec("vigil_virtualip_failover_duration_seconds", "Time from the controller's detection of a fault (a node silent to its echo requests, memberlist's death notice, or the decision to move) to the new owner's report that it bound the address, by reason of the move.", failoverBuckets, "reason"),
		decisions:    promutil.CounterVec("vigil_controller_election_decisions_total", "Elections run, by outcome: keep (the owner stays), move (a new owner), none (no owner).", "outcome"),
		leader:       promutil.Gauge("vigil_controller_leader", "1 while this controller replica leads (elects owners), else 0."),
		silentNodes:  promutil.Gauge("vigil_controller_nodes_silent", "Nodes that have stopped answering the leader's ICMP echo requests (--node-echo-dead-after): their agents count as dead."),
		binds:        map[string]pendingBind{},
		alive:        map[string]bool{},
	}
}

// Register adds the metrics, and collectors of the VirtualIPs in reader (the manager's
// cache) exported while leading() is true, to reg.
func (m *metrics) Register(reg prometheus.Registerer, reader client.Reader, leading func() bool) error {
	for _, c := range m.collectors(reader, leading) {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) collectors(reader client.Reader, leading func() bool) []prometheus.Collector {
	return []prometheus.Collector{m.ownerChanges, m.failover, m.decisions, m.leader, m.silentNodes,
		&virtualIPCollector{reader: reader, leading: leading}, &nodeAgentCollector{metrics: m, leading: leading}}
}

// MetricDescriptions describes every vigil_* metric the controller can export, memberlist's
// included (docs/operations.md is checked against it).
func MetricDescriptions() []*prometheus.Desc {
	cs := append(newMetrics().collectors(nil, func() bool { return false }), version.NewCollector())
	cs = append(cs, membership.NewMetrics().Collectors()...)
	return promutil.Describe(cs...)
}

// SetLeader records whether this replica leads.
func (m *metrics) SetLeader(leading bool) {
	if m == nil {
		return
	}
	v := 0.0
	if leading {
		v = 1
	}
	m.leader.Set(v)
}

// pendingBind is a move waiting for the new owner to report the bind.
type pendingBind struct {
	uid      types.UID
	epoch    int64
	reason   string
	detected time.Time
}

// failoverReasons are the moves whose duration vigil_virtualip_failover_duration_seconds
// measures: every move away from an owner. A first election (Elected) is not a failover.
var failoverReasons = map[string]bool{
	vigilv1.ReasonOwnerLost: true, vigilv1.ReasonOwnerUnhealthy: true, vigilv1.ReasonOwnerDraining: true,
	vigilv1.ReasonPreempted: true, vigilv1.ReasonNotSelected: true,
}

// observeElection counts a decision and, when the owner changed, the move and its start.
// detected is when the controller learnt of the fault (its own clock).
func (m *metrics) observeElection(vip *vigilv1.VirtualIP, old, desired *vigilv1.VirtualIPStatus, detected time.Time) {
	if m == nil {
		return
	}
	switch desired.Owner {
	case "":
		m.decisions.WithLabelValues("none").Inc()
	case old.Owner:
		m.decisions.WithLabelValues("keep").Inc()
	default:
		m.decisions.WithLabelValues("move").Inc()
	}
	if desired.Owner == old.Owner || desired.LastTransition == nil {
		return
	}
	reason := desired.LastTransition.Reason
	m.ownerChanges.WithLabelValues(reason).Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.binds, vip.Name)
	if desired.Owner != "" && failoverReasons[reason] {
		m.binds[vip.Name] = pendingBind{uid: vip.UID, epoch: desired.Epoch, reason: reason, detected: detected}
	}
}

// observeBound records the failover duration once the owner reports the bind of the epoch
// that a move started.
func (m *metrics) observeBound(vip *vigilv1.VirtualIP, s *vigilv1.VirtualIPStatus, now time.Time) {
	if m == nil {
		return
	}
	ready := meta.FindStatusCondition(s.Conditions, vigilv1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue {
		return
	}
	m.mu.Lock()
	p, ok := m.binds[vip.Name]
	if ok && p.uid == vip.UID && p.epoch == s.Epoch {
		delete(m.binds, vip.Name)
	} else {
		ok = false
	}
	m.mu.Unlock()
	if ok {
		m.failover.WithLabelValues(p.reason).Observe(now.Sub(p.detected).Seconds())
	}
}

// forget drops what is pending for a deleted VirtualIP.
func (m *metrics) forget(name string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.binds, name)
}

// setAlive records the liveness watcher's view of the agents.
func (m *metrics) setSilent(n int) {
	if m == nil {
		return
	}
	m.silentNodes.Set(float64(n))
}

func (m *metrics) setAlive(alive map[string]bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.alive = maps.Clone(alive)
}

var (
	ownerDesc     = promutil.Desc("vigil_virtualip_owner", "1 for the node that owns the VirtualIP (status.owner); no series while it has no owner.", "virtualip", "node")
	conditionDesc = promutil.Desc("vigil_virtualip_condition", "1 while the VirtualIP's condition of this type (Ready, Degraded, Conflict) is True, else 0.", "virtualip", "type")
	standbysDesc  = promutil.Desc("vigil_virtualip_standbys", "Eligible nodes ready to take the VirtualIP over (status.standbys).", "virtualip")
	epochDesc     = promutil.Desc("vigil_virtualip_epoch", "The VirtualIP's epoch (status.epoch): it grows by one on every owner change, across controller restarts.", "virtualip")
	aliveDesc     = promutil.Desc("vigil_nodeagent_alive", "1 while the node's agent is alive (memberlist, the node answering echo requests, or a fresh NodeAgent heartbeat), else 0.", "node")
)

// virtualIPCollector exports every VirtualIP's status at scrape time from the cache, like
// kube-state-metrics: nothing to keep in step, no stale series after a delete. Only the
// leading replica exports, so each series has one source.
type virtualIPCollector struct {
	reader  client.Reader
	leading func() bool
}

func (c *virtualIPCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{ownerDesc, conditionDesc, standbysDesc, epochDesc} {
		ch <- d
	}
}

// collectListTimeout bounds the VirtualIP list a scrape makes: Prometheus's own scrape
// timeout is 10 s by default, and a scrape that gets an error is better than none.
const collectListTimeout = 5 * time.Second

func (c *virtualIPCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.leading() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), collectListTimeout)
	defer cancel()
	var list vigilv1.VirtualIPList
	if err := c.reader.List(ctx, &list); err != nil {
		ch <- prometheus.NewInvalidMetric(ownerDesc, err)
		return
	}
	for i := range list.Items {
		v := &list.Items[i]
		if v.Status.Owner != "" {
			ch <- prometheus.MustNewConstMetric(ownerDesc, prometheus.GaugeValue, 1, v.Name, v.Status.Owner)
		}
		for _, t := range []string{vigilv1.ConditionReady, vigilv1.ConditionDegraded, vigilv1.ConditionConflict} {
			if cond := meta.FindStatusCondition(v.Status.Conditions, t); cond != nil {
				ch <- prometheus.MustNewConstMetric(conditionDesc, prometheus.GaugeValue, promutil.Bool(cond.Status == metav1.ConditionTrue), v.Name, t)
			}
		}
		ch <- prometheus.MustNewConstMetric(standbysDesc, prometheus.GaugeValue, float64(len(v.Status.Standbys)), v.Name)
		ch <- prometheus.MustNewConstMetric(epochDesc, prometheus.GaugeValue, float64(v.Status.Epoch), v.Name)
	}
}

// nodeAgentCollector exports the liveness watcher's last view of the agents.
type nodeAgentCollector struct {
	metrics *metrics
	leading func() bool
}

func (c *nodeAgentCollector) Describe(ch chan<- *prometheus.Desc) { ch <- aliveDesc }

func (c *nodeAgentCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.leading() {
		return
	}
	c.metrics.mu.Lock()
	defer c.metrics.mu.Unlock()
	for node, alive := range c.metrics.alive {
		ch <- prometheus.MustNewConstMetric(aliveDesc, prometheus.GaugeValue, promutil.Bool(alive), node)
	}
}
