package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"vigil.dev/vigil/internal/keepalived"
)

const convertUsage = `Usage: vigil convert keepalived [--node NAME] [FILE...] [--node NAME FILE...]...

Print VirtualIPs (YAML for kubectl apply) for keepalived configuration files. Every
keepalived setting that Vigil does not take as it is becomes a comment saying why.

keepalived.conf is per host. Give each host's file after --node and its node name (the
node's kubernetes.io/hostname label): --node applies to the files after it, up to the next
--node. An address configured on several hosts becomes one VirtualIP whose priorities rank
those nodes. Without --node, priorities are noted in comments.

FILE "-", or no FILE at all, reads standard input.

Flags:
  --node NAME   the node whose configuration the following files are (its
                kubernetes.io/hostname label, usually the node name)
  -h            this help

Example:
  vigil convert keepalived --node lb-a lb-a/keepalived.conf --node lb-b lb-b/keepalived.conf > vips.yaml

The mapping of each keepalived setting: docs/migrating-from-keepalived.md.
`

// runConvert runs "vigil convert FORMAT ...": keepalived is the only format.
func runConvert(args []string) error {
	fs := flag.NewFlagSet("vigil convert", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stderr, convertUsage)
			return err
		}
		return fmt.Errorf("convert: %w (see -h)", err)
	}
	if fs.NArg() == 0 {
		fmt.Fprint(os.Stderr, convertUsage)
		return errors.New("convert: a format is required: keepalived")
	}
	if format := fs.Arg(0); format != "keepalived" {
		return fmt.Errorf("convert: unknown format %q: want keepalived", format)
	}
	if err := convertKeepalived(fs.Args()[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("convert keepalived: %w", err)
	}
	return nil
}

// keepalivedInput is one file to convert and the node it configures.
type keepalivedInput struct {
	path, node string
}

// convertKeepalived reads the files named in args (stdin for "-" or none), converts them
// and writes the YAML to stdout.
func convertKeepalived(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	inputs, err := parseKeepalivedArgs(args, stderr)
	if err != nil {
		return err
	}
	var sources []keepalived.Source
	for _, in := range inputs {
		cfg, err := readKeepalived(in.path, stdin)
		if err != nil {
			return err
		}
		sources = append(sources, keepalived.Source{Node: in.node, Config: cfg})
	}
	res, err := keepalived.Convert(sources)
	if err != nil {
		return err
	}
	if len(res.VirtualIPs) == 0 {
		_, _ = fmt.Fprintln(stderr, "vigil convert keepalived: warning: no virtual address found to convert")
	}
	return keepalived.WriteYAML(stdout, res)
}

// parseKeepalivedArgs reads files and --node flags in any order: each --node names the
// node of the files after it.
func parseKeepalivedArgs(args []string, stderr io.Writer) ([]keepalivedInput, error) {
	fs := flag.NewFlagSet("vigil convert keepalived", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	node := ""
	fs.Func("node", "the node (kubernetes.io/hostname) whose configuration the following files are", func(v string) error {
		if err := keepalived.CheckNodeName(v); err != nil {
			return err
		}
		node = v
		return nil
	})
	var inputs []keepalivedInput
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				_, _ = fmt.Fprint(stderr, convertUsage)
				return nil, err
			}
			return nil, fmt.Errorf("%w (see -h)", err)
		}
		if fs.NArg() == 0 {
			break
		}
		inputs = append(inputs, keepalivedInput{path: fs.Arg(0), node: node})
		args = fs.Args()[1:]
	}
	if len(inputs) == 0 {
		inputs = append(inputs, keepalivedInput{path: "-", node: node})
	}
	stdins := 0
	for _, in := range inputs {
		if in.path == "-" {
			stdins++
		}
	}
	if stdins > 1 {
		return nil, errors.New(`standard input ("-") can be read only once`)
	}
	return inputs, nil
}

// readKeepalived reads and parses one file, "-" being stdin.
func readKeepalived(path string, stdin io.Reader) (*keepalived.Config, error) {
	name, read := path, func() ([]byte, error) { return os.ReadFile(path) }
	if path == "-" {
		name, read = "stdin", func() ([]byte, error) { return io.ReadAll(stdin) }
	}
	src, err := read()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return keepalived.Parse(name, src) // its errors start with name:line
}
