package lab

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// OutsiderPort is where a memberlist outsider listens in its namespace (Vigil's is 7952).
const OutsiderPort = 7962

// OutsiderOptions describe a memberlist member that is not one of Vigil's: it holds some
// other key (or none) and tries to join Vigil's members.
type OutsiderOptions struct {
	Bind string // IP to listen on
	Key  []byte // gossip key; nil gossips in the clear
	Join string // host:port of a Vigil member
	Stay time.Duration
}

// RunOutsider runs the outsider (the helper's memberlist-outsider command, inside a lab
// namespace): it tries to join, reports the result on out ("joined N" or "join failed:
// ..."), stays for o.Stay gossiping with whomever it knows, then reports the members it
// saw and leaves.
func RunOutsider(out io.Writer, o OutsiderOptions) error {
	cfg := memberlist.DefaultLANConfig()
	cfg.Name = "outsider"
	cfg.BindAddr, cfg.BindPort = o.Bind, OutsiderPort
	cfg.ProbeInterval, cfg.ProbeTimeout, cfg.GossipInterval = 100*time.Millisecond, 80*time.Millisecond, 50*time.Millisecond
	cfg.TCPTimeout = time.Second
	cfg.SecretKey = o.Key
	cfg.LogOutput = out
	m, err := memberlist.Create(cfg)
	if err != nil {
		return fmt.Errorf("starting the outsider: %w", err)
	}
	defer func() { _ = m.Shutdown() }()
	if n, err := m.Join([]string{o.Join}); err != nil {
		_, _ = fmt.Fprintf(out, "join failed: %s\n", strings.Join(strings.Fields(err.Error()), " "))
	} else {
		_, _ = fmt.Fprintf(out, "joined %d\n", n)
	}
	time.Sleep(o.Stay)
	var names []string
	for _, n := range m.Members() {
		names = append(names, n.Name)
	}
	_, _ = fmt.Fprintf(out, "members: %s\n", strings.Join(names, ","))
	return m.Leave(time.Second)
}

// MemberlistOutsider runs an outsider in a member's namespace (a node, "cp" or "client")
// that tries to join the memberlist member at join with key (nil: in the clear), stays
// for stay, and returns what it said (see RunOutsider).
func (l *Lab) MemberlistOutsider(member string, key []byte, join string, stay time.Duration) (string, error) {
	m, err := l.member(member)
	if err != nil {
		return "", err
	}
	name := "memberlist-outsider-" + strconv.FormatInt(time.Now().UnixNano(), 10) // a log of its own
	p, err := l.StartProcess(member, name, l.HelperBin, "memberlist-outsider",
		"--bind", m.IPv4.String(), "--key", base64.StdEncoding.EncodeToString(key), "--join", join, "--stay", stay.String())
	if err != nil {
		return "", err
	}
	if err := p.Wait(stay + 30*time.Second); err != nil {
		return p.Log(), err
	}
	return p.Log(), p.Err()
}

// ParseOutsiderFlags reads the helper command's flags.
func ParseOutsiderFlags(bind, key, join string, stay time.Duration) (OutsiderOptions, error) {
	o := OutsiderOptions{Bind: bind, Join: join, Stay: stay}
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
		o.Key = k
	}
	return o, nil
}
