package controllers

import (
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/uuid"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderElectionID names the leader Lease (in --leader-election-namespace).
const LeaderElectionID = "vigil-controller.vigil.dev"

// LeaderIdentity is how this process names itself in the leader Lease: its pod's name
// (podName, $POD_NAME from the downward API) when it has one, else the hostname and a
// random UUID (controller-runtime's default). client-go lets a candidate take a Lease that
// has not expired only when the Lease names the candidate itself: with a new identity per
// process, a controller whose container restarted (a crash, or its exit after it lost the
// Lease in an API outage) waited a whole lease duration (15 s) and a retry before it
// decided anything again — and nobody else could decide meanwhile. Under its pod's name it
// leads again at once. Two live processes never share a pod name: the kubelet starts a
// container again only once the old one is gone.
func LeaderIdentity(podName string) (string, error) {
	if podName != "" {
		return podName, nil
	}
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("naming this process for leader election: %w", err)
	}
	return host + "_" + string(uuid.NewUUID()), nil
}

// leaderLock is the leader Lease, held under LeaderIdentity($POD_NAME), with the request
// timeout controller-runtime gives its own (half the renew deadline, at least 1 s: one
// hung request must not cost the Lease); nil without leader election.
func (o *Options) leaderLock(cfg *rest.Config, logger logr.Logger) (resourcelock.Interface, error) {
	if !o.LeaderElection {
		return nil, nil
	}
	identity, err := LeaderIdentity(os.Getenv("POD_NAME"))
	if err != nil {
		return nil, err
	}
	logger.Info("leader election", "identity", identity, "lease", o.LeaderElectionNamespace+"/"+LeaderElectionID)
	cfg = rest.AddUserAgent(rest.CopyConfig(cfg), "leader-election")
	cfg.Timeout = max(o.RenewDeadline/2, time.Second)
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("leader election client: %w", err)
	}
	coordination, err := coordinationv1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("leader election client: %w", err)
	}
	return resourcelock.New(resourcelock.LeasesResourceLock, o.LeaderElectionNamespace, LeaderElectionID, core, coordination,
		resourcelock.ResourceLockConfig{Identity: identity})
}
