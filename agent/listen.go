package agent

import (
	"fmt"
	"net"
)

// validateBindIP accepts an empty --bind-address (all addresses) or one IP address.
func validateBindIP(ip string) error {
	if ip == "" {
		return nil
	}
	if net.ParseIP(ip) == nil {
		return fmt.Errorf("--bind-address %q is not an IP address (give the node's IP, without a port)", ip)
	}
	return nil
}

// withBindAddress returns the options with --bind-address as the host of every listener
// whose flag names none. The agent runs on the host network: ":9470" would also answer on
// every other address of the node, public ones included.
func (o Options) withBindAddress() Options {
	o.Metrics.BindAddress = listenOn(o.Metrics.BindAddress, o.BindAddress)
	o.HealthProbeBindAddress = listenOn(o.HealthProbeBindAddress, o.BindAddress)
	o.Memberlist.Bind = listenOn(o.Memberlist.Bind, o.BindAddress)
	return o
}

// listenOn puts ip in a host:port that has no host. "0" and "" (a listener turned off)
// and a host:port with a host stay as they are; the IP gets brackets when it is IPv6.
func listenOn(hostport, ip string) string {
	if ip == "" || hostport == "" || hostport == "0" {
		return hostport
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host != "" {
		return hostport
	}
	return net.JoinHostPort(ip, port)
}
