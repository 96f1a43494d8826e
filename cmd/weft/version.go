package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and build information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), versionText())
			return nil
		},
	}
}

func versionText() string {
	out := fmt.Sprintf("weft %s\n", version)
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	if version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		out = fmt.Sprintf("weft %s\n", info.Main.Version)
	}
	out += fmt.Sprintf("go: %s\n", info.GoVersion)
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision", "vcs.time", "vcs.modified", "GOOS", "GOARCH":
			out += fmt.Sprintf("%s: %s\n", s.Key, s.Value)
		}
	}
	for _, d := range info.Deps {
		switch d.Path {
		case "github.com/lovoo/goka", "github.com/IBM/sarama", "github.com/cockroachdb/pebble/v2", "github.com/twmb/franz-go/pkg/kfake":
			out += fmt.Sprintf("%s: %s\n", d.Path, d.Version)
		}
	}
	return out
}
