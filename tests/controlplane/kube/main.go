// Command kube is a multi-call binary: kube-apiserver, kube-controller-manager and kubectl,
// exactly as the upstream mains of k8s.io/kubernetes build them, linked once.
//
// The tool is chosen by the name it is called by (scripts/controlplane makes symlinks
// kube-apiserver, kube-controller-manager and kubectl pointing at this binary), or by the first
// argument: `kube kubectl get pods`.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata" // CronJob time zones, as upstream

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

var tools = map[string]func() int{
	"kube-apiserver": func() int {
		return cli.Run(apiserver.NewAPIServerCommand())
	},
	"kube-controller-manager": func() int {
		return cli.Run(controllermanager.NewControllerManagerCommand())
	},
	"kubectl": func() int {
		// As k8s.io/kubernetes/cmd/kubectl: set the verbosity before the command is built.
		logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) // nolint:errcheck
		command := kubectlcmd.NewDefaultKubectlCommand()
		if err := cli.RunNoErrOutput(command); err != nil {
			kubectlutil.CheckErr(err)
		}
		return 0
	},
}

func main() {
	name := filepath.Base(os.Args[0])
	run, ok := tools[name]
	if !ok && len(os.Args) > 1 {
		if run, ok = tools[os.Args[1]]; ok {
			// `kube kubectl get pods` -> os.Args = [kubectl get pods]; cobra reads os.Args[1:].
			os.Args = os.Args[1:]
		}
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "usage: %s kube-apiserver|kube-controller-manager|kubectl [args...]\n"+
			"(or call it through a symlink of one of those names)\n", name)
		os.Exit(2)
	}
	os.Exit(run())
}
