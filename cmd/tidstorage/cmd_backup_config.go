package main

import (
	"encoding/json"
	"flag"
	"fmt"

	"github.com/tidstorage/tidstorage/config"
)

// loadConfig finishes the parsing of a backup-family command that takes
// -c FILE and no argument, and loads the configuration. When ok is false
// the command stops with code (0 after --help, 2 for a usage error, 1 for a
// bad configuration).
func (c *cli) loadConfig(name string, fs *flag.FlagSet, path *string, args []string) (cfg *config.Config, code int, ok bool) {
	if ok, code := c.parse(fs, args); !ok {
		return nil, code, false
	}
	if fs.NArg() > 0 {
		return nil, c.usageError(name, "unexpected argument %q", fs.Arg(0)), false
	}
	if *path == "" {
		return nil, c.usageError(name, "give the configuration with -c FILE"), false
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return nil, c.fail(name, err), false
	}
	return cfg, 0, true
}

// configRepos returns the configured repositories, and each storage's by
// id: the sets are found there, even if a repository moved since a backup.
func configRepos(cfg *config.Config) (repos []string, repoOf func(id string) string) {
	byID := map[string]string{}
	for _, s := range cfg.Storages {
		if s.Repository != "" {
			byID[s.ID] = s.Repository
			repos = append(repos, s.Repository)
		}
	}
	return repos, func(id string) string { return byID[id] }
}

// loadRepos is loadConfig for the commands that work on the repositories
// alone (sets, verify, forget): it fails when none is configured.
func (c *cli) loadRepos(name string, fs *flag.FlagSet, path *string, args []string) (repos []string, repoOf func(string) string, code int, ok bool) {
	_, repos, repoOf, code, ok = c.loadReposConfig(name, fs, path, args)
	return repos, repoOf, code, ok
}

// loadReposConfig is loadRepos that also returns the configuration (nil
// when it did not load).
func (c *cli) loadReposConfig(name string, fs *flag.FlagSet, path *string, args []string) (cfg *config.Config, repos []string, repoOf func(string) string, code int, ok bool) {
	cfg, code, ok = c.loadConfig(name, fs, path, args)
	if !ok {
		return cfg, nil, nil, code, false
	}
	repos, repoOf = configRepos(cfg)
	if len(repos) == 0 {
		return cfg, nil, nil, c.fail(name, fmt.Errorf("%s: no storage has a repository", *path)), false
	}
	return cfg, repos, repoOf, 0, true
}

// printJSON prints v indented to stdout.
func (c *cli) printJSON(name string, v any) int {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return c.fail(name, err)
	}
	return 0
}
