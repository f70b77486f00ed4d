// Command vigil is Vigil's single binary: `vigil controller` elects owners of VirtualIPs,
// `vigil agent` runs on every node. Logic lives in the controllers and agent packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"vigil.dev/vigil/agent"
	"vigil.dev/vigil/controllers"
	"vigil.dev/vigil/internal/version"
)

const usage = `vigil keeps virtual IPs answering on Kubernetes nodes.

Usage:
  vigil controller [flags]   elect an owner node for every VirtualIP (Deployment)
  vigil agent [flags]        bind, announce and health-check VIPs on this node (DaemonSet)
  vigil version              print the version, commit and Go version
  vigil convert keepalived [flags] FILE...   print VirtualIPs for a keepalived.conf

Run 'vigil <command> -h' for the flags of a command.
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "vigil: %v\n", err)
			os.Exit(2)
		}
	}
}

func run(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, usage)
		if len(args) == 0 {
			return errors.New("a command is required: controller or agent")
		}
		return nil
	}
	cmd, args := args[0], args[1:]
	if cmd == "version" {
		if len(args) > 0 {
			return fmt.Errorf("version: unexpected argument %q", args[0])
		}
		fmt.Println(version.Get())
		return nil
	}
	if cmd == "convert" {
		return runConvert(args)
	}
	fs := flag.NewFlagSet("vigil "+cmd, flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "path to a kubeconfig; default: $KUBECONFIG, in-cluster config, then ~/.kube/config")
	// Failovers take a fraction of a second: log times need milliseconds to be read.
	zapOpts := zap.Options{TimeEncoder: zapcore.RFC3339NanoTimeEncoder}
	zapOpts.BindFlags(fs)

	var validate func() error
	var start func(ctx context.Context, cfg *rest.Config) error
	switch cmd {
	case "controller":
		var o controllers.Options
		o.BindFlags(fs)
		validate = o.Validate
		start = func(ctx context.Context, cfg *rest.Config) error { return controllers.Run(ctx, cfg, o, ctrl.Log) }
	case "agent":
		var o agent.Options
		o.BindFlags(fs)
		validate = o.Validate
		start = func(ctx context.Context, cfg *rest.Config) error { return agent.Run(ctx, cfg, o, ctrl.Log) }
	default:
		return fmt.Errorf("unknown command %q: want controller or agent", cmd)
	}
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if err := validate(); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	cfg, err := loadConfig(*kubeconfig)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	ctrl.Log.Info("starting", "command", cmd, "version", version.Version, "commit", version.Get().Commit, "host", cfg.Host)
	return start(ctrl.SetupSignalHandler(), cfg)
}

// parseFlags parses args, turning the flag package's error-plus-usage dump into one line;
// -h still prints the full usage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(os.Stderr)
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return fmt.Errorf("%w (see -h)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	return nil
}

func loadConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("no Kubernetes API configuration (give --kubeconfig, set $KUBECONFIG or run in a pod): %w", err)
	}
	return cfg, nil
}
