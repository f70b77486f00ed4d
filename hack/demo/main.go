// Command demo shows Vigil's API on a real etcd + kube-apiserver: it applies the samples,
// shows how an invalid object is rejected, runs the real controller and prints
// `kubectl get vip -o wide`. It stops everything it started, also on Ctrl-C.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"vigil.dev/vigil/test/envtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "demo failed: %v\n", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) {
	fmt.Printf("\n\033[1m==> "+format+"\033[0m\n", args...)
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := envtest.RepoRoot()
	vigil := filepath.Join(root, "bin", "vigil")
	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")

	say("starting a real etcd and kube-apiserver (from %s)", os.Getenv("KUBEBUILDER_ASSETS"))
	env, err := envtest.Start()
	if err != nil {
		return err
	}
	defer func() {
		say("stopping kube-apiserver and etcd")
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping control plane: %v\n", err)
		}
	}()
	dir, err := os.MkdirTemp("", "vigil-demo-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := env.WriteAdminKubeconfig(kubeconfig); err != nil {
		return err
	}
	k := func(args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		return cmd
	}
	fmt.Printf("API server %s, CRD virtualips.vigil.dev installed\n", env.Config.Host)

	if err := k("create", "namespace", "vigil-system").Run(); err != nil {
		return fmt.Errorf("creating namespace: %w", err)
	}
	say("starting the controller: vigil controller (log: %s)", filepath.Join(dir, "controller.log"))
	logFile, err := os.Create(filepath.Join(dir, "controller.log"))
	if err != nil {
		return err
	}
	controller := exec.Command(vigil, "controller", "--kubeconfig", kubeconfig,
		"--metrics-bind-address=0", "--health-probe-bind-address=0")
	controller.Stdout, controller.Stderr = logFile, logFile
	if err := controller.Start(); err != nil {
		return fmt.Errorf("starting %s (run `make build`): %w", vigil, err)
	}
	defer func() {
		_ = controller.Process.Signal(syscall.SIGTERM)
		_ = controller.Wait()
		_ = logFile.Close()
	}()

	say("kubectl apply -f config/samples/")
	if err := k("apply", "-f", filepath.Join(root, "config", "samples")).Run(); err != nil {
		return fmt.Errorf("applying samples: %w", err)
	}

	say("kubectl apply -f config/samples/invalid/virtualip_cidr.yaml   (deliberately invalid)")
	var rejection strings.Builder
	bad := k("apply", "-f", filepath.Join(root, "config", "samples", "invalid", "virtualip_cidr.yaml"))
	bad.Stdout, bad.Stderr = &rejection, &rejection
	if err := bad.Run(); err == nil {
		return errors.New("the invalid sample was accepted")
	}
	fmt.Print(rejection.String())

	say("waiting for the controller to report status")
	if err := k("wait", "vip", "--all", "--for=condition=Ready=false", "--timeout=30s").Run(); err != nil {
		if log, readErr := os.ReadFile(logFile.Name()); readErr == nil {
			fmt.Fprintf(os.Stderr, "controller log:\n%s\n", log)
		}
		return fmt.Errorf("controller never reported status: %w", err)
	}
	say("kubectl get vip -o wide")
	if err := k("get", "vip", "-o", "wide").Run(); err != nil {
		return err
	}
	fmt.Println("\nREADY is False with reason NoOwner: election of an owner node is not built yet.")
	return nil
}
