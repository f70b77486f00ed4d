package keepalived

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// addSeeds adds every test input under testdata, and a few fragments, to a fuzz corpus.
func addSeeds(f *testing.F, add func(src []byte)) {
	files, err := filepath.Glob("testdata/*.conf")
	if err != nil {
		f.Fatal(err)
	}
	more, err := filepath.Glob("testdata/*/*.conf")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range append(files, more...) {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		add(src)
	}
	for _, s := range []string{
		"vrrp_instance X { virtual_ipaddress { 10.0.0.1/24 dev eth0 } }",
		"vrrp_instance X\n{\nvirtual_ipaddress {\n::1\nfe80::1%eth0\n::ffff:1.2.3.4\n}\n}",
		"@h vrrp_instance \"a b\" { @^h priority 300 }",
		"vrrp_script s { script \"sh -c 'curl -m 0.0001 http://[::1]:0/'\"\ninterval 99999999 }",
		"virtual_server 10.0.0.1 80 { real_server 1.1.1.1 80 { HTTP_GET { url { path / status_code 100-599 } } } }",
	} {
		add([]byte(s))
	}
}

// positioned is how every syntax error starts: the file name and a line number.
var positioned = regexp.MustCompile(`^fuzz\.conf:[1-9][0-9]*: [^\n]+$`)

// Parse never panics, and a syntax error is one line naming a line of the input.
func FuzzParse(f *testing.F) {
	addSeeds(f, func(src []byte) { f.Add(src) })
	f.Fuzz(func(t *testing.T, src []byte) {
		_, err := Parse("fuzz.conf", src)
		if err != nil && !positioned.MatchString(err.Error()) {
			t.Fatalf("error %q is not one line starting with the position", err)
		}
	})
}

// Whatever it reads, the converter never panics and writes YAML that strict-unmarshals into
// exactly the VirtualIPs it made, every one of which the API server would accept. With
// twoHosts the input is read as two hosts' configurations, to exercise merging.
func FuzzConvert(f *testing.F) {
	addSeeds(f, func(src []byte) {
		f.Add(src, false)
		f.Add(src, true)
	})
	f.Fuzz(func(t *testing.T, src []byte, twoHosts bool) {
		cfg, err := Parse("fuzz.conf", src)
		if err != nil {
			return
		}
		sources := []Source{{Config: cfg}}
		if twoHosts {
			sources = []Source{{Node: "node-a", Config: cfg}, {Node: "node-b.example.com", Config: cfg}}
		}
		out, res := convertToYAML(t, sources)
		checkOutput(t, out, res)
	})
}
