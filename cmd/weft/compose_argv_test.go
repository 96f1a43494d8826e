package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// What a container runs, resolved against weft's own command line: the
// subcommand and its flags, set from the arguments and the WEFT_* variables.

// resolvedCommand is what a container runs: the weft subcommand, with its
// flags set from the arguments and then, as applyEnv does, from the WEFT_*
// variables.
type resolvedCommand struct {
	cmd  *cobra.Command
	args []string // positional arguments
	path string   // "weft produce"
}

func (r *resolvedCommand) flag(name string) string {
	if f := r.cmd.Flags().Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// resolveCommand finds the weft subcommand that argv (without the binary)
// names, parses its flags and applies the WEFT_* variables of env. Every
// problem is returned: unknown subcommand, unknown flag, a WEFT_* variable
// that is no flag's fallback, a value the flag rejects, wrong arguments.
func resolveCommand(argv []string, env map[string]string) (*resolvedCommand, []string) {
	root := newRootCommand()
	c, rest, err := root.Find(argv)
	if err != nil {
		return nil, []string{fmt.Sprintf("%q does not name a weft subcommand: %v", argv, err)}
	}
	if c == root {
		return nil, []string{fmt.Sprintf("%q does not name a weft subcommand (have: %s)", argv, subcommandNames(root))}
	}
	r := &resolvedCommand{cmd: c, path: c.CommandPath()}
	var problems []string
	if err := c.ParseFlags(rest); err != nil {
		problems = append(problems, fmt.Sprintf("%s %q: %v", r.path, rest, err))
		return r, problems
	}
	byEnv := map[string]*pflag.Flag{}
	c.Flags().VisitAll(func(f *pflag.Flag) {
		name, _ := envNames(c, f)
		byEnv[name] = f
	})
	for _, k := range sortedKeys(env) {
		if !strings.HasPrefix(k, envPrefix) {
			continue
		}
		f, ok := byEnv[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is not the environment variable of any flag of %q (its variables: %s)",
				k, r.path, strings.Join(sortedKeys(byEnv), ", ")))
			continue
		}
		if f.Changed || env[k] == "" {
			continue // the command line wins; empty keeps the default
		}
		if err := c.Flags().Set(f.Name, env[k]); err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q is not a valid --%s: %v", k, env[k], f.Name, err))
		}
	}
	r.args = c.Flags().Args()
	if err := c.ValidateArgs(r.args); err != nil {
		problems = append(problems, fmt.Sprintf("%s %q: %v", r.path, r.args, err))
	}
	return r, problems
}

func subcommandNames(root *cobra.Command) string {
	var names []string
	for _, c := range root.Commands() {
		names = append(names, c.Name())
	}
	return strings.Join(names, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
