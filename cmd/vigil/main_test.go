package main

import (
	"strings"
	"testing"
)

// Bad flags stop the command before it touches the API, with one line naming the problem.
func TestBadFlagsGiveOneClearError(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	cases := []struct {
		args []string
		want string
	}{
		{nil, "a command is required: controller or agent"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"controller", "--no-such-flag"}, "controller: flag provided but not defined: -no-such-flag (see -h)"},
		{[]string{"controller", "--metrics-bind-address=nowhere"}, `--metrics-bind-address "nowhere" is not host:port`},
		{[]string{"controller", "--health-probe-bind-address=:99999"}, "port must be a number from 0 to 65535"},
		{[]string{"controller", "--leader-election-namespace=Bad_NS"}, `--leader-election-namespace "Bad_NS" is not a namespace name`},
		{[]string{"controller", "--leader-elect-renew-deadline=20s"}, "leader election needs 0 < --leader-elect-retry-period < --leader-elect-renew-deadline < --leader-elect-lease-duration"},
		{[]string{"controller", "--leader-elect-lease-duration=soon"}, `invalid value "soon" for flag -leader-elect-lease-duration`},
		{[]string{"controller", "extra"}, `unexpected argument "extra"`},
		{[]string{"agent"}, "agent: --node-name is required"},
		{[]string{"agent", "--node-name=Node_A"}, `--node-name "Node_A" is not a node name`},
		{[]string{"agent", "--node-name=node-a", "--metrics-bind-address=1.2.3:80"}, "host must be an IP address"},
		{[]string{"agent", "--node-name=node-a", "--handover-drain=2m"}, "--handover-drain 2m0s is outside 0s..1m"},
	}
	for _, tc := range cases {
		err := run(tc.args)
		if err == nil {
			t.Errorf("vigil %v: no error, want %q", tc.args, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("vigil %v:\n  got  %q\n  want one line containing %q", tc.args, err, tc.want)
		}
	}
}
