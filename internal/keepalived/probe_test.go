package keepalived

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// checkCommands are the check commands found in keepalived configurations, and the probe
// each becomes (a health check written as YAML, without name and timing) or why it cannot.
var checkCommands = []struct {
	command string
	want    string        // the check's probe as YAML; "" when the command cannot be mapped
	timeout time.Duration // the command's own time limit
	note    string        // part of a note on the mapping, or of the error
}{
	// curl
	{command: "curl -sf http://127.0.0.1:8080/healthz", want: "http: {host: 127.0.0.1, port: 8080, path: /healthz, scheme: HTTP}", note: "curl -f passed on any status below 400"},
	{command: "/usr/bin/curl -s -o /dev/null http://localhost/", want: "http: {host: localhost, port: 80, path: /, scheme: HTTP}", note: "without -f passed on any HTTP answer"},
	{command: "curl -fsSk --max-time 2 https://10.0.0.1:6443/readyz?verbose", want: "http: {host: 10.0.0.1, port: 6443, path: '/readyz?verbose', scheme: HTTPS, insecureSkipVerify: true}", timeout: 2 * time.Second},
	{command: "curl -sfm3 https://[::1]/", want: "http: {host: '::1', port: 443, path: /, scheme: HTTPS}", timeout: 3 * time.Second},
	{command: "curl -k http://127.0.0.1/", want: "http: {host: 127.0.0.1, port: 80, path: /, scheme: HTTP}", note: "does not apply to http"},
	{command: "curl -sf -H 'Host: Shop.Example.com' http://127.0.0.1:8080/", want: "http: {host: 127.0.0.1, port: 8080, path: /, scheme: HTTP, hostHeader: shop.example.com}"},
	{command: "curl -sf -H 'X-Check: 1' http://127.0.0.1/", want: "http: {host: 127.0.0.1, port: 80, path: /, scheme: HTTP}", note: `header "X-Check" is not sent`},
	{command: "curl -sf --resolve app.example.com:443:10.1.1.1 https://app.example.com/ping", want: "http: {host: 10.1.1.1, port: 443, path: /ping, scheme: HTTPS, hostHeader: app.example.com}"},
	{command: "curl -sfL http://127.0.0.1/", want: "http: {host: 127.0.0.1, port: 80, path: /, scheme: HTTP}", note: "curl -L followed redirects"},
	{command: "curl -u admin:secret http://user:pw@127.0.0.1/", want: "http: {host: 127.0.0.1, port: 80, path: /, scheme: HTTP}", note: "the URL carried credentials"},
	{command: "curl --connect-timeout 1 -m 5 127.0.0.1:9000/live", want: "http: {host: 127.0.0.1, port: 9000, path: /live, scheme: HTTP}", timeout: time.Second},
	{command: "curl http://a/ http://b/", note: "several URLs"},
	{command: "curl ftp://127.0.0.1/", note: "Vigil checks http and https only"},
	{command: "curl http://under_score.local/", note: "neither an IP address nor a DNS name"},
	{command: "curl -sf http://127.0.0.1:99999/", note: "port \"99999\""},
	// wget
	{command: "wget -q -O /dev/null -T 2 http://127.0.0.1:8080/ping", want: "http: {host: 127.0.0.1, port: 8080, path: /ping, scheme: HTTP}", timeout: 2 * time.Second, note: "wget followed redirects"},
	{command: "wget --spider --timeout=3 --no-check-certificate https://127.0.0.1/", want: "http: {host: 127.0.0.1, port: 443, path: /, scheme: HTTPS, insecureSkipVerify: true}", timeout: 3 * time.Second},
	// netcat and bash
	{command: "nc -z 127.0.0.1 5432", want: "tcp: {host: 127.0.0.1, port: 5432}"},
	{command: "/bin/nc -zv -w2 LocalHost 6379", want: "tcp: {host: localhost, port: 6379}", timeout: 2 * time.Second},
	{command: "ncat -w 1 10.0.0.5 80", want: "tcp: {host: 10.0.0.5, port: 80}", timeout: time.Second, note: "nc without -z"},
	{command: "nc -zu 127.0.0.1 53", note: "nc -u tests UDP"},
	{command: "nc -z 127.0.0.1 80-90", note: "not a number from 1 to 65535"},
	{command: "bash -c '</dev/tcp/127.0.0.1/6443'", want: "tcp: {host: 127.0.0.1, port: 6443}"},
	{command: `/bin/bash -c "echo > /dev/tcp/10.0.0.1/22"`, want: "tcp: {host: 10.0.0.1, port: 22}"},
	{command: "timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/25'", want: "tcp: {host: 127.0.0.1, port: 25}", timeout: 2 * time.Second},
	// ping
	{command: "ping -c1 -W1 192.168.1.1", want: "icmp: {target: 192.168.1.1}", timeout: time.Second},
	{command: "/bin/ping -q -c 3 -w 2 10.0.0.1", want: "icmp: {target: 10.0.0.1}", timeout: 2 * time.Second, note: "ping -c 3 sent 3 echo requests"},
	{command: "ping6 -c 1 2001:DB8::1", want: "icmp: {target: '2001:db8::1'}"},
	{command: "ping -c 1 gw.example.net", note: "is a name; Vigil pings an IP address"},
	// wrappers and shell syntax
	{command: "/bin/sh -c 'timeout 1 curl -sf 127.0.0.1:9000/ >/dev/null 2>&1 || exit 1'", want: "http: {host: 127.0.0.1, port: 9000, path: /, scheme: HTTP}", timeout: time.Second},
	{command: "env LANG=C nc -z 127.0.0.1 80", want: "tcp: {host: 127.0.0.1, port: 80}"},
	{command: "sh -c 'curl -sf http://127.0.0.1/ | grep -q ok'", note: `shell syntax "|"`},
	{command: "curl -sf http://127.0.0.1:$PORT/", note: "the shell would expand"},
	{command: "sh -c 'curl -sf \"http://127.0.0.1/", note: "unterminated"},
	// what has no Vigil equivalent
	{command: "killall -0 haproxy", note: "killall checks that a process runs"},
	{command: "pidof nginx", note: "pidof checks that a process runs"},
	{command: "/usr/bin/systemctl is-active --quiet mariadb", note: "systemctl checks that a process runs"},
	{command: "test -f /var/run/keepalived.master", note: "test checks a file"},
	{command: "/etc/keepalived/check_apiserver.sh", note: "Vigil runs no commands on nodes"},
	{command: "", note: "no command"},
}

// Each check command maps to its probe, or says why it cannot.
func TestCheckCommandsMapToProbes(t *testing.T) {
	for _, tc := range checkCommands {
		t.Run(tc.command, func(t *testing.T) {
			p, err := probeFromCommand(tc.command)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), tc.note) {
					t.Fatalf("error %v, want one containing %q", err, tc.note)
				}
				return
			}
			if err != nil {
				t.Fatalf("not mapped: %v", err)
			}
			var want vigilv1.HealthCheck
			if err := yaml.UnmarshalStrict([]byte(tc.want), &want); err != nil {
				t.Fatalf("bad want: %v", err)
			}
			got := vigilv1.HealthCheck{ICMP: p.icmp, TCP: p.tcp, HTTP: p.http}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("probe\n%s\nwant\n%s", asJSON(got), asJSON(want))
			}
			if p.timeout != tc.timeout {
				t.Errorf("timeout %s, want %s", p.timeout, tc.timeout)
			}
			if joined := strings.Join(p.notes, "\n"); !strings.Contains(joined, tc.note) {
				t.Errorf("notes %q do not contain %q", joined, tc.note)
			}
		})
	}
}
