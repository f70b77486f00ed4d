package v1alpha1

import (
	"net/netip"
	"time"
)

// DefaultPriority is the priority of a node that no priority rule matches.
const DefaultPriority int32 = 100

// DefaultProbeTimeout is a health check's timeout when neither it nor a shorter interval is set.
const DefaultProbeTimeout = time.Second

// EffectivePrefixLength is spec.prefixLength, or the host prefix of the address's family
// (32 for IPv4, 128 for IPv6) when it is unset. The schema cannot default by family, so
// every consumer reads the prefix through this method.
func (s *VirtualIPSpec) EffectivePrefixLength() int {
	if s.PrefixLength != nil {
		return int(*s.PrefixLength)
	}
	if addr, err := netip.ParseAddr(s.Address); err == nil && addr.Is6() {
		return 128
	}
	return 32
}

// EffectiveTimeout is the check's timeout, or 1s capped at its interval when unset.
func (c *HealthCheck) EffectiveTimeout() time.Duration {
	if c.Timeout != nil {
		return c.Timeout.Duration
	}
	return min(DefaultProbeTimeout, c.Interval.Duration)
}
