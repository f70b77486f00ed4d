package main

import (
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// outsiderPort is where a memberlist outsider listens in its namespace (Vigil's is 7952).
const outsiderPort = 7962

// outsider is a memberlist member that is not one of Vigil's: it holds some other key (or
// none) and tries to join Vigil's members.
type outsider struct {
	bind string // IP to listen on
	key  []byte // gossip key; nil gossips in the clear
	join string // host:port of a Vigil member
	stay time.Duration
}

// memberlistOutsider runs an outsider (Lab.MemberlistOutsider): it tries to join, reports
// the result on stdout ("joined N" or "join failed: ..."), stays gossiping with whomever
// it knows, then reports the members it saw and leaves.
func memberlistOutsider(fs *flag.FlagSet, args []string) error {
	bind, key, join := fs.String("bind", "", "IP to listen on"), fs.String("key", "", "base64 gossip key; empty: none"), fs.String("join", "", "host:port of a member")
	stay := fs.Duration("stay", 3*time.Second, "how long to stay after trying to join (at most 1m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, err := parseOutsider(*bind, *key, *join, min(*stay, time.Minute))
	if err != nil {
		return err
	}
	return o.run(os.Stdout)
}

func parseOutsider(bind, key, join string, stay time.Duration) (outsider, error) {
	o := outsider{bind: bind, join: join, stay: stay}
	if net.ParseIP(bind) == nil {
		return o, fmt.Errorf("--bind %q is not an IP address", bind)
	}
	if _, port, err := net.SplitHostPort(join); err != nil {
		return o, fmt.Errorf("--join %q: %w", join, err)
	} else if _, err := strconv.Atoi(port); err != nil {
		return o, fmt.Errorf("--join %q: port: %w", join, err)
	}
	if key != "" {
		k, err := base64.StdEncoding.DecodeString(key)
		if err != nil {
			return o, fmt.Errorf("--key: %w", err)
		}
		o.key = k
	}
	return o, nil
}

func (o outsider) run(out io.Writer) error {
	cfg := memberlist.DefaultLANConfig()
	cfg.Name = "outsider"
	cfg.BindAddr, cfg.BindPort = o.bind, outsiderPort
	cfg.ProbeInterval, cfg.ProbeTimeout, cfg.GossipInterval = 100*time.Millisecond, 80*time.Millisecond, 50*time.Millisecond
	cfg.TCPTimeout = time.Second
	cfg.SecretKey = o.key
	cfg.LogOutput = out
	m, err := memberlist.Create(cfg)
	if err != nil {
		return fmt.Errorf("starting the outsider: %w", err)
	}
	defer func() { _ = m.Shutdown() }()
	if n, err := m.Join([]string{o.join}); err != nil {
		_, _ = fmt.Fprintf(out, "join failed: %s\n", strings.Join(strings.Fields(err.Error()), " "))
	} else {
		_, _ = fmt.Fprintf(out, "joined %d\n", n)
	}
	time.Sleep(o.stay)
	var names []string
	for _, n := range m.Members() {
		names = append(names, n.Name)
	}
	_, _ = fmt.Fprintf(out, "members: %s\n", strings.Join(names, ","))
	return m.Leave(time.Second)
}
