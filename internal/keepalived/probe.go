package keepalived

import (
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// probe is what a check command tests, as a Vigil probe: exactly one of icmp, tcp and http.
type probe struct {
	icmp *vigilv1.ICMPCheck
	tcp  *vigilv1.TCPCheck
	http *vigilv1.HTTPCheck
	// timeout is the command's own time limit (curl -m, nc -w, ...); 0 when it has none.
	timeout time.Duration
	// notes say where the probe behaves differently from the command.
	notes []string
}

// maxShellDepth bounds "sh -c 'sh -c ...'" unwrapping.
const maxShellDepth = 3

// probeFromCommand maps a check command (a vrrp_script's script, a MISC_CHECK's misc_path)
// to a probe. The error says why it cannot be mapped.
func probeFromCommand(line string) (probe, error) {
	return commandProbe(line, 0)
}

func commandProbe(line string, depth int) (probe, error) {
	words, err := shellSplit(line)
	if err != nil {
		return probe{}, err
	}
	cmd, err := simplify(words)
	if err != nil {
		return probe{}, err
	}
	argv, limit, err := unwrap(cmd.argv)
	if err != nil {
		return probe{}, err
	}
	var p probe
	switch {
	case len(argv) >= 3 && isShell(argv[0]) && strings.HasPrefix(argv[1], "-") && strings.Contains(argv[1], "c"):
		if depth >= maxShellDepth {
			return probe{}, errors.New("shells nested too deep")
		}
		p, err = commandProbe(argv[2], depth+1)
	case cmd.devTCP != "" && (len(argv) == 0 || isNoop(argv[0])):
		p, err = devTCPProbe(cmd.devTCP)
	case len(argv) == 0:
		return probe{}, errNoCommand
	default:
		p, err = programProbe(argv)
	}
	if err != nil {
		return probe{}, err
	}
	p.timeout = shorter(p.timeout, limit)
	return p, nil
}

// unwrap takes off the commands that only run another one: timeout (whose limit it
// returns) and env.
func unwrap(argv []string) (rest []string, limit time.Duration, err error) {
	for len(argv) > 0 {
		switch path.Base(argv[0]) {
		case "timeout":
			var d time.Duration
			if d, argv, err = timeoutArgs(argv[1:]); err != nil {
				return nil, 0, err
			}
			limit = shorter(limit, d)
		case "env":
			argv = argv[1:]
			for len(argv) > 0 && strings.Contains(argv[0], "=") && !strings.HasPrefix(argv[0], "-") {
				argv = argv[1:]
			}
		default:
			return argv, limit, nil
		}
	}
	return argv, limit, nil
}

// timeoutArgs reads "timeout [-s SIG] [-k DUR] DURATION COMMAND...".
func timeoutArgs(args []string) (time.Duration, []string, error) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if (args[0] == "-s" || args[0] == "-k") && len(args) > 1 {
			args = args[1:]
		}
		args = args[1:]
	}
	if len(args) == 0 {
		return 0, nil, errors.New("timeout without a duration")
	}
	d, err := parseSeconds(strings.TrimSuffix(args[0], "s"))
	if err != nil {
		return 0, nil, fmt.Errorf("timeout %q: write the duration in seconds", args[0])
	}
	return d, args[1:], nil
}

// shorter is the shorter of two time limits, where 0 means none.
func shorter(a, b time.Duration) time.Duration {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

func isShell(arg string) bool {
	switch path.Base(arg) {
	case "sh", "bash", "dash", "ash", "zsh", "ksh":
		return true
	}
	return false
}

// isNoop are the commands that do nothing but let a /dev/tcp redirection connect.
func isNoop(arg string) bool {
	switch path.Base(arg) {
	case "echo", "cat", ":", "true", "exec", "printf":
		return true
	}
	return false
}

// programProbe maps a command by the program it runs.
func programProbe(argv []string) (probe, error) {
	program := path.Base(argv[0])
	switch program {
	case "curl":
		return curlProbe(argv[1:])
	case "wget":
		return wgetProbe(argv[1:])
	case "nc", "ncat", "netcat":
		return ncProbe(argv[1:])
	case "ping", "ping6":
		return pingProbe(argv[1:], program == "ping6")
	case "pidof", "pgrep", "pkill", "killall", "kill", "ps", "systemctl", "service", "supervisorctl":
		return probe{}, fmt.Errorf("%s checks that a process runs; Vigil checks services over the network: "+
			"add a tcp or http check of the port the process serves", program)
	case "test", "[", "stat", "ls":
		return probe{}, fmt.Errorf("%s checks a file; Vigil checks services over the network: "+
			"add a tcp or http check of the service instead", program)
	}
	return probe{}, fmt.Errorf("it runs %s, and Vigil runs no commands on nodes: "+
		"add an icmp, tcp or http check that tests what the script tests", argv[0])
}

// devTCPProbe maps bash's /dev/tcp/HOST/PORT to a TCP check.
func devTCPProbe(hostPort string) (probe, error) {
	host, port, ok := strings.Cut(hostPort, "/")
	if !ok {
		return probe{}, fmt.Errorf("/dev/tcp/%s has no port", hostPort)
	}
	return tcpProbe(host, port)
}

// tcpProbe is a TCP connect to host:port.
func tcpProbe(host, port string) (probe, error) {
	h, err := checkHost(host)
	if err != nil {
		return probe{}, err
	}
	n, err := parseInt(port, 1, 65535)
	if err != nil {
		return probe{}, fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return probe{tcp: &vigilv1.TCPCheck{Host: h, Port: int32(n)}}, nil
}

// ncProbe maps "nc -z [-w SECONDS] HOST PORT" to a TCP check.
func ncProbe(args []string) (probe, error) {
	var p probe
	var operands []string
	scan := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			operands = append(operands, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			switch a[j] {
			case 'z':
				scan = true
			case 'v', 'n', '4', '6', 'd', 'N':
			case 'w':
				value := a[j+1:]
				if value == "" && i+1 < len(args) {
					i++
					value = args[i]
				}
				d, err := parseSeconds(value)
				if err != nil {
					return probe{}, fmt.Errorf("nc -w %q: %w", value, err)
				}
				p.timeout, j = d, len(a)
			case 'u':
				return probe{}, errors.New("nc -u tests UDP; Vigil's checks are icmp, tcp and http")
			case 'U', 'l':
				return probe{}, fmt.Errorf("nc -%c does not test a TCP port", a[j])
			default:
				p.notes = append(p.notes, fmt.Sprintf("nc option -%c is not mapped", a[j]))
			}
		}
	}
	if len(operands) != 2 {
		return probe{}, errors.New("nc needs exactly a host and a port")
	}
	t, err := tcpProbe(operands[0], operands[1])
	if err != nil {
		return probe{}, err
	}
	t.timeout, t.notes = p.timeout, p.notes
	if !scan {
		t.notes = append(t.notes, "nc without -z also waited for the server to close; Vigil only connects")
	}
	return t, nil
}

// pingValueFlags are ping's options that take a value.
const pingValueFlags = "cWwiIstQlmMpS"

// pingProbe maps "ping -c 1 [-W SECONDS] TARGET" to an ICMP check.
func pingProbe(args []string, v6 bool) (probe, error) {
	var p probe
	var target string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || len(a) < 2 {
			target = a
			continue
		}
		flag, value := a[1], a[2:]
		if strings.IndexByte(pingValueFlags, flag) >= 0 && value == "" && i+1 < len(args) {
			i++
			value = args[i]
		}
		if note, err := pingOption(flag, value, &p); err != nil {
			return probe{}, err
		} else if note != "" {
			p.notes = append(p.notes, note)
		}
	}
	addr, err := icmpTarget(target, v6)
	if err != nil {
		return probe{}, err
	}
	p.icmp = &vigilv1.ICMPCheck{Target: addr}
	return p, nil
}

// pingOption applies one ping option; it returns a note when the option is not mapped.
func pingOption(flag byte, value string, p *probe) (string, error) {
	switch flag {
	case 'W', 'w':
		d, err := parseSeconds(value)
		if err != nil {
			return "", fmt.Errorf("ping -%c %q: %w", flag, value, err)
		}
		p.timeout = shorter(p.timeout, d)
	case 'c':
		if value != "1" {
			return fmt.Sprintf("ping -c %s sent %s echo requests; Vigil sends one per interval "+
				"(failureThreshold counts the failures)", value, value), nil
		}
	case 'q', 'n', '4', '6', 'A', 'D', 'O':
	case 'I':
		return fmt.Sprintf("ping -I %s is not mapped: Vigil pings from the node's routing table", value), nil
	default:
		return fmt.Sprintf("ping option -%c is not mapped", flag), nil
	}
	return "", nil
}

// icmpTarget checks a ping target: Vigil pings IP addresses only.
func icmpTarget(target string, v6 bool) (string, error) {
	if target == "" {
		return "", errors.New("ping without a target")
	}
	ip := net.ParseIP(target)
	if ip == nil {
		return "", fmt.Errorf("ping target %q is a name; Vigil pings an IP address (or the word gateway)", target)
	}
	addr, err := checkHost(target)
	if err != nil {
		return "", err
	}
	if v6 && ip.To4() != nil {
		return "", fmt.Errorf("ping6 of the IPv4 address %s", target)
	}
	return addr, nil
}

// portOf returns the port of a URL, or the scheme's default.
func portOf(port, scheme string) (int32, error) {
	if port == "" {
		if scheme == "https" {
			return 443, nil
		}
		return 80, nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return int32(n), nil
}
