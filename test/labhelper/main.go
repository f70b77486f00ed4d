// Command labhelper is the one binary the lab (package test/lab) runs inside its network
// namespaces, as Kubernetes' e2e tests run agnhost: each subcommand is one of the lab's
// helper processes.
//
//	labhelper serve-http --name NODE [--port 80]       a node's HTTP service, answering with the node's name
//	labhelper record --url URL --for D [--out FILE]    the client's traffic recorder (JSON lines)
//	labhelper sweep --targets FILE --for D [--until-ok] the recorder for many VIPs at once (JSON lines)
//	labhelper burn [--for D] [--threads N]             N busy cores (CPU starvation)
//	labhelper check-tcp --addr HOST:PORT               one TCP connect (keepalived-default's vrrp_script)
//	labhelper track-tcp --addr HOST:PORT --file F      a 0.1 s TCP check for keepalived-tuned's vrrp_track_file
//	labhelper memberlist-outsider --bind IP --join A   a memberlist member with another key, trying to join Vigil's
//	labhelper probe-load [--vips N] [--for D]          Vigil's health probes under load (make bench-probes)
//
// The lab builds it from source (Config.HelperBin empty) or runs a prebuilt one
// (make builds bin/labhelper next to bin/lab).
package main

import "vigil.dev/vigil/test/subcommand"

// commands are labhelper's subcommands: each parses its flags from fs and runs.
var commands = map[string]subcommand.Command{
	"serve-http":          serveHTTP,
	"record":              record,
	"sweep":               sweep,
	"burn":                burn,
	"check-tcp":           checkTCP,
	"track-tcp":           trackTCP,
	"memberlist-outsider": memberlistOutsider,
	"probe-load":          probeLoad,
}

func main() { subcommand.Main("labhelper", commands) }
