// Package flagutil validates command-line values shared by Vigil's subcommands.
package flagutil

import (
	"fmt"
	"net"
	"strconv"
)

// ValidateBindAddress accepts "0" (turned off) or host:port with a port in 0..65535.
func ValidateBindAddress(flagName, value string) error {
	if value == "0" {
		return nil
	}
	host, port, err := net.SplitHostPort(value)
	if err != nil {
		return fmt.Errorf("--%s %q is not host:port (or 0 to turn it off): %w", flagName, value, err)
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("--%s %q: host must be an IP address or empty for all addresses", flagName, value)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("--%s %q: port must be a number from 0 to 65535", flagName, value)
	}
	return nil
}
