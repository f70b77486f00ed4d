package main

import (
	"errors"
	"flag"
)

func benchFailover(fs *flag.FlagSet, args []string) error {
	return errors.New("bench-failover: not built yet")
}
