// Package subcommand runs a command line of the form `program COMMAND [flags]`: the lab's
// CLI (hack/lab) and its helper binary (test/labhelper) are both made of subcommands.
package subcommand

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Command parses its flags from fs and runs.
type Command func(fs *flag.FlagSet, args []string) error

// Main runs the command named by os.Args[1] with the rest of the arguments; on error it
// prints "program: error" and exits with status 1.
func Main(program string, commands map[string]Command) {
	if err := Run(program, commands, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
		os.Exit(1)
	}
}

// Run runs the command named by args[0] with the rest of args.
func Run(program string, commands map[string]Command, args []string) error {
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(args) == 0 {
		return errors.New("usage: " + program + " " + strings.Join(names, "|") + " [flags]")
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return fmt.Errorf("unknown command %q (want %s)", args[0], strings.Join(names, ", "))
	}
	return cmd(flag.NewFlagSet(program+" "+args[0], flag.ContinueOnError), args[1:])
}
