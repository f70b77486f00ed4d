package agent

import (
	"context"
	"time"

	"github.com/go-logr/logr"
)

// handoverPoll is how often a stopping agent looks whether its VIPs have moved.
const handoverPoll = 20 * time.Millisecond

// handOver, on SIGTERM, marks the node draining and waits until its VIPs have moved to
// nodes that confirmed binding them (make before break), or timeout.
func (s *nodeSync) handOver(ctx context.Context, timeout time.Duration, log logr.Logger) {
	if timeout == 0 {
		return
	}
	log.Info("stopping: handing VIPs over", "timeout", timeout)
	s.report.SetDraining(true)
	flushCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.report.Flush(flushCtx); err != nil {
		log.Error(err, "cannot mark the node draining; releasing VIPs without handover")
		return
	}
	for !s.idle(flushCtx) {
		select {
		case <-flushCtx.Done():
			log.Info("handover timed out; releasing the rest")
			return
		case <-time.After(handoverPoll):
		}
	}
	log.Info("handover done")
}
