package keepalived

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// httpRequest is what a curl or wget command line asks for, before it becomes a check.
type httpRequest struct {
	url        string
	insecure   bool
	hostHeader string
	// resolve maps the URL's host to the address connected to (curl --resolve).
	resolveHost, resolveAddr string
	notes                    []string
}

// curlValueOptions are curl's options that take a value; a short one may have it attached
// ("-m5").
var curlValueOptions = map[string]bool{
	"-m": true, "--max-time": true, "--connect-timeout": true, "-H": true, "--header": true,
	"-o": true, "--output": true, "-w": true, "--write-out": true, "-X": true, "--request": true,
	"-u": true, "--user": true, "-A": true, "--user-agent": true, "-e": true, "--referer": true,
	"--cacert": true, "--capath": true, "-E": true, "--cert": true, "--key": true,
	"-d": true, "--data": true, "--data-raw": true, "--data-binary": true, "--json": true,
	"--resolve": true, "--retry": true, "--retry-delay": true, "--retry-max-time": true,
	"-x": true, "--proxy": true, "--interface": true, "-b": true, "--cookie": true,
	"-c": true, "--cookie-jar": true, "--url": true, "--noproxy": true, "-K": true,
	"--config": true, "-r": true, "--range": true, "-T": true, "--upload-file": true,
	"-F": true, "--form": true, "--max-redirs": true, "--stderr": true, "--trace": true,
}

// curlIgnored change only what curl prints, or nothing a check depends on.
var curlIgnored = map[string]bool{
	"-s": true, "--silent": true, "-S": true, "--show-error": true, "-v": true, "--verbose": true,
	"-q": true, "--disable": true, "-4": true, "--ipv4": true, "-6": true, "--ipv6": true,
	"-g": true, "--globoff": true, "--compressed": true, "-N": true, "--no-buffer": true,
	"--http1.0": true, "--http1.1": true, "--http2": true, "-#": true, "--progress-bar": true,
	"--no-progress-meter": true, "-o": true, "--output": true, "-w": true, "--write-out": true,
	"-A": true, "--user-agent": true, "--max-redirs": true, "--stderr": true, "--trace": true,
	"-e": true, "--referer": true, "--noproxy": true,
}

// splitCurlArgs expands clustered short options ("-sSfm5" is -s -S -f -m 5) into
// option/value pairs; operands come back with option "".
func splitCurlArgs(args []string) [][2]string {
	var out [][2]string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case !strings.HasPrefix(a, "-") || a == "-":
			out = append(out, [2]string{"", a})
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a, "=")
			if !hasValue && curlValueOptions[name] && i+1 < len(args) {
				i++
				value = args[i]
			}
			out = append(out, [2]string{name, value})
		default:
			for j := 1; j < len(a); j++ {
				opt := "-" + a[j:j+1]
				if !curlValueOptions[opt] {
					out = append(out, [2]string{opt, ""})
					continue
				}
				value := a[j+1:]
				if value == "" && i+1 < len(args) {
					i++
					value = args[i]
				}
				out = append(out, [2]string{opt, value})
				break
			}
		}
	}
	return out
}

// curlProbe maps a curl command line to an HTTP check.
func curlProbe(args []string) (probe, error) {
	var req httpRequest
	var p probe
	fail := false
	for _, ov := range splitCurlArgs(args) {
		opt, value := ov[0], ov[1]
		switch {
		case opt == "" || opt == "--url":
			if req.url != "" {
				return probe{}, errors.New("curl with several URLs; a Vigil check has one")
			}
			req.url = value
		case opt == "-f" || opt == "--fail" || opt == "--fail-with-body":
			fail = true
		case curlIgnored[opt]:
		default:
			if err := curlOption(opt, value, &req, &p); err != nil {
				return probe{}, err
			}
		}
	}
	if fail {
		req.notes = append(req.notes, "curl -f passed on any status below 400, Vigil on 2xx only (expectedStatuses lists others)")
	} else {
		req.notes = append(req.notes, "curl without -f passed on any HTTP answer, even a 500; Vigil on 2xx only (expectedStatuses lists others)")
	}
	return req.probe(p)
}

// curlOption applies one curl option that changes the request or its outcome.
func curlOption(opt, value string, req *httpRequest, p *probe) error {
	switch opt {
	case "-k", "--insecure":
		req.insecure = true
	case "-m", "--max-time", "--connect-timeout":
		d, err := parseSeconds(value)
		if err != nil {
			return fmt.Errorf("curl %s: %w", opt, err)
		}
		p.timeout = shorter(p.timeout, d)
	case "-H", "--header":
		name, v, _ := strings.Cut(value, ":")
		if strings.EqualFold(strings.TrimSpace(name), "host") {
			req.hostHeader = strings.TrimSpace(v)
			return nil
		}
		req.notes = append(req.notes, fmt.Sprintf("header %q is not sent: Vigil's HTTP check sends no custom headers", name))
	case "--resolve":
		parts := strings.SplitN(value, ":", 3)
		if len(parts) != 3 {
			return fmt.Errorf("curl --resolve %q is not HOST:PORT:ADDRESS", value)
		}
		req.resolveHost, req.resolveAddr = parts[0], strings.Trim(parts[2], "[]")
	default:
		req.notes = append(req.notes, curlNote(opt))
	}
	return nil
}

// curlNote says what an unmapped curl option did.
func curlNote(opt string) string {
	switch opt {
	case "-L", "--location":
		return "curl -L followed redirects; Vigil judges the first answer (a 3xx is not a 2xx): check the final URL"
	case "-I", "--head":
		return "curl -I sent HEAD; Vigil sends GET"
	case "-X", "--request", "-d", "--data", "--data-raw", "--data-binary", "--json", "-F", "--form", "-T", "--upload-file":
		return fmt.Sprintf("curl %s changed the request; Vigil sends a GET without a body", opt)
	case "-u", "--user":
		return "curl -u sent credentials; Vigil's HTTP check sends none (the credentials are not copied here)"
	case "--cacert", "--capath", "-E", "--cert", "--key":
		return fmt.Sprintf("curl %s is not mapped: Vigil verifies HTTPS with the system's CAs and sends no client certificate", opt)
	case "--retry", "--retry-delay", "--retry-max-time":
		return fmt.Sprintf("curl %s retried within one run; Vigil counts failures with failureThreshold instead", opt)
	case "-x", "--proxy":
		return "curl used a proxy; Vigil connects directly"
	}
	return fmt.Sprintf("curl option %s is not mapped", opt)
}

// wgetProbe maps a wget command line to an HTTP check.
func wgetProbe(args []string) (probe, error) {
	var req httpRequest
	var p probe
	for i := 0; i < len(args); i++ {
		opt, value, hasValue := strings.Cut(args[i], "=")
		if !strings.HasPrefix(opt, "-") {
			if req.url != "" {
				return probe{}, errors.New("wget with several URLs; a Vigil check has one")
			}
			req.url = args[i]
			continue
		}
		if !hasValue && strings.IndexByte("OoaTtUeP", lastByte(opt)) >= 0 && !strings.HasPrefix(opt, "--") && i+1 < len(args) {
			i++
			value = args[i]
		}
		if err := wgetOption(opt, value, &req, &p); err != nil {
			return probe{}, err
		}
	}
	req.notes = append(req.notes, "wget followed redirects and passed on any final status below 400; Vigil judges the first answer, and passes on 2xx only")
	return req.probe(p)
}

func lastByte(s string) byte { return s[len(s)-1] }

// wgetOption applies one wget option.
func wgetOption(opt, value string, req *httpRequest, p *probe) error {
	switch strings.TrimLeft(opt, "-") {
	case "q", "quiet", "O", "output-document", "o", "output-file", "a", "nv", "no-verbose",
		"spider", "S", "server-response", "4", "6", "inet4-only", "inet6-only", "U", "user-agent",
		"qO", "qO-", "O-", "no-proxy":
	case "T", "timeout":
		d, err := parseSeconds(value)
		if err != nil {
			return fmt.Errorf("wget %s: %w", opt, err)
		}
		p.timeout = shorter(p.timeout, d)
	case "t", "tries":
		if value != "1" {
			req.notes = append(req.notes, "wget retried within one run; Vigil counts failures with failureThreshold instead")
		}
	case "no-check-certificate":
		req.insecure = true
	case "header":
		name, v, _ := strings.Cut(value, ":")
		if strings.EqualFold(strings.TrimSpace(name), "host") {
			req.hostHeader = strings.TrimSpace(v)
			return nil
		}
		req.notes = append(req.notes, fmt.Sprintf("header %q is not sent: Vigil's HTTP check sends no custom headers", name))
	default:
		req.notes = append(req.notes, fmt.Sprintf("wget option %s is not mapped", opt))
	}
	return nil
}

// probe turns the request into an HTTP check.
func (req httpRequest) probe(p probe) (probe, error) {
	check, err := req.check()
	if err != nil {
		return probe{}, err
	}
	p.http = check
	p.notes = append(p.notes, req.notes...)
	return p, nil
}

// check reads the URL: scheme, host, port and path.
func (req *httpRequest) check() (*vigilv1.HTTPCheck, error) {
	raw := req.url
	if raw == "" {
		return nil, errors.New("no URL")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw // curl's default scheme
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %w", req.url, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("URL %q: Vigil checks http and https only", req.url)
	}
	c := &vigilv1.HTTPCheck{Scheme: vigilv1.HTTPSchemeHTTP}
	if scheme == "https" {
		c.Scheme = vigilv1.HTTPSchemeHTTPS
	}
	if c.Port, err = portOf(u.Port(), scheme); err != nil {
		return nil, fmt.Errorf("URL %q: %w", req.url, err)
	}
	if err := req.target(c, u); err != nil {
		return nil, err
	}
	if c.Path, err = requestPath(u); err != nil {
		return nil, err
	}
	req.tls(c, u)
	return c, nil
}

// target sets the host connected to and the Host header sent.
func (req *httpRequest) target(c *vigilv1.HTTPCheck, u *url.URL) error {
	host := u.Hostname()
	if req.resolveHost != "" && strings.EqualFold(req.resolveHost, host) {
		if req.hostHeader == "" {
			req.hostHeader = host
		}
		host = req.resolveAddr
	}
	h, err := checkHost(host)
	if err != nil {
		return fmt.Errorf("URL %q: %w", req.url, err)
	}
	c.Host = h
	if req.hostHeader == "" {
		return nil
	}
	header := strings.ToLower(req.hostHeader)
	if len(header) > 253 || !hostHeaderSyntax.MatchString(header) {
		req.notes = append(req.notes, fmt.Sprintf("Host header %q is not mapped: hostHeader takes a DNS name", req.hostHeader))
		return nil
	}
	c.HostHeader = header
	return nil
}

// requestPath is the path and query of the URL, as sent.
func requestPath(u *url.URL) (string, error) {
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	if len(p) > 1024 || !strings.HasPrefix(p, "/") || strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return "", fmt.Errorf("URL path %q is not mapped: Vigil takes a path of printable ASCII up to 1024 characters", p)
	}
	return p, nil
}

// tls applies -k and notes what the URL carried that Vigil does not send.
func (req *httpRequest) tls(c *vigilv1.HTTPCheck, u *url.URL) {
	if req.insecure && c.Scheme == vigilv1.HTTPSchemeHTTPS {
		c.InsecureSkipVerify = true
	} else if req.insecure {
		req.notes = append(req.notes, "certificate verification was turned off, which does not apply to http")
	}
	if u.User != nil {
		req.notes = append(req.notes, "the URL carried credentials; Vigil's HTTP check sends none (they are not copied here)")
	}
}
