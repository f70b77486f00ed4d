package lab

import (
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
)

// netlinkSampler reads some nodes every interval, in a goroutine of its own, until it is
// stopped, and keeps every sample. It reads over netlink sockets opened once inside each
// node's namespace, so that sampling forks nothing and keeps its pace when the CPU is
// starved.
type netlinkSampler[S any] struct {
	nodes   []string
	handles []*netlink.Handle

	mu      sync.Mutex
	samples []S
	stop    chan struct{}
	done    chan struct{}
}

// startSampling opens a netlink socket in each member's namespace and, now and every
// interval, takes a sample with take, given the members' names and their sockets in the
// same order.
func startSampling[S any](members []*Member, every time.Duration, take func(nodes []string, handles []*netlink.Handle) S) (*netlinkSampler[S], error) {
	s := &netlinkSampler[S]{stop: make(chan struct{}), done: make(chan struct{})}
	for _, m := range members {
		h, err := handleIn(m.NS)
		if err != nil {
			s.closeHandles()
			return nil, err
		}
		s.nodes = append(s.nodes, m.Name)
		s.handles = append(s.handles, h)
	}
	go s.run(every, take)
	return s, nil
}

func (s *netlinkSampler[S]) run(every time.Duration, take func(nodes []string, handles []*netlink.Handle) S) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		sample := take(s.nodes, s.handles)
		s.mu.Lock()
		s.samples = append(s.samples, sample)
		s.mu.Unlock()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// Samples returns the samples taken so far.
func (s *netlinkSampler[S]) Samples() []S {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples)
}

// latest returns the newest sample (the zero sample before the first).
func (s *netlinkSampler[S]) latest() S {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		var zero S
		return zero
	}
	return s.samples[len(s.samples)-1]
}

// Stop ends the sampling and returns every sample.
func (s *netlinkSampler[S]) Stop() []S {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.closeHandles()
	return s.Samples()
}

func (s *netlinkSampler[S]) closeHandles() {
	for _, h := range s.handles {
		h.Close()
	}
	s.handles = nil
}
