package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tidstorage/tidstorage/cmd/daemon"
	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/classic"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
)

// pointFlags choose where the coherent point of cut and backup comes from.
type pointFlags struct {
	statusFile string
	dump       string
	tids       stringList
	timeout    time.Duration
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func addPointFlags(fs *flag.FlagSet) *pointFlags {
	p := &pointFlags{}
	fs.StringVar(&p.statusFile, "status-file", "", "take the point from the last line of status `FILE` (default: status_file of the configuration)")
	fs.StringVar(&p.dump, "dump", "", "take the point from a running server's classic DUMP at `HOST:PORT`")
	fs.Var(&p.tids, "tid", "give the point yourself, `STORAGE=TID` for each storage (id or label; TID as for 'tidstorage tid'); repeatable")
	fs.DurationVar(&p.timeout, "timeout", 10*time.Second, "connect and reply `TIMEOUT` for --dump")
	return p
}

// resolve returns the point (storage id → TID) and a description of its
// source. Warnings (a torn status line...) go to warn.
func (p *pointFlags) resolve(cfg *config.Config, storages []*storageRef, warn io.Writer) (map[string]txn.TID, string, error) {
	given := 0
	for _, set := range []bool{p.statusFile != "", p.dump != "", len(p.tids) > 0} {
		if set {
			given++
		}
	}
	if given > 1 {
		return nil, "", errors.New("give one of --status-file, --dump and --tid")
	}
	switch {
	case len(p.tids) > 0:
		point, err := parseTIDArgs(storages, p.tids)
		if err != nil {
			return nil, "", err
		}
		return point, "--tid", nil
	case p.dump != "":
		cl, err := classic.Dial(p.dump, p.timeout)
		if err != nil {
			return nil, "", err
		}
		defer cl.Close()
		raw, err := cl.Dump()
		if err != nil {
			return nil, "", err
		}
		boot, err := cl.Bootstraped()
		if err != nil {
			return nil, "", err
		}
		cl.Quit()
		if !boot || len(raw) == 0 {
			return nil, "", fmt.Errorf("%s has published no point yet (bootstrap not finished)", p.dump)
		}
		point := make(map[string]txn.TID, len(raw))
		for k, v := range raw {
			point[k] = txn.TID(v)
		}
		return point, "dump " + p.dump, nil
	}
	path := p.statusFile
	if path == "" {
		path = cfg.StatusFile
	}
	if path == "" {
		return nil, "", errors.New("no point: give --status-file, --dump or --tid (the configuration has no status_file)")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	res, err := statusfile.Replay(f, statusfile.ReplayOptions{})
	for _, w := range res.Warnings {
		fmt.Fprintf(warn, "warning: %s: %s\n", path, w)
	}
	if err != nil {
		return nil, "", err
	}
	if res.Applied == 0 {
		return nil, "", fmt.Errorf("%s holds no point yet", path)
	}
	point := make(map[string]txn.TID, len(res.Point))
	for k, v := range res.Point {
		point[k] = txn.TID(v)
	}
	when := time.Unix(0, int64(res.Time*1e9)).UTC().Format(time.RFC3339)
	return point, fmt.Sprintf("status file %s, line %d (%s)", path, res.LastLine, when), nil
}

// parseTIDArgs reads --tid STORAGE=TID values: STORAGE a storage id or
// label (the longest that matches), TID any form `tidstorage tid` reads.
func parseTIDArgs(storages []*storageRef, args []string) (map[string]txn.TID, error) {
	point := map[string]txn.TID{}
	for _, arg := range args {
		var ref *storageRef
		var value string
		for _, s := range storages {
			for _, name := range []string{s.ID, s.Label} {
				if v, ok := strings.CutPrefix(arg, name+"="); ok && (ref == nil || len(name) > len(ref.ID)) {
					ref, value = s, v
				}
			}
		}
		if ref == nil {
			return nil, fmt.Errorf("--tid %q: want STORAGE=TID with a configured storage id or label (%s)", arg, labels(storages))
		}
		t, err := txn.ParseTID(value, txn.FormatAuto)
		if err != nil {
			return nil, fmt.Errorf("--tid %q: %w", arg, err)
		}
		point[ref.ID] = t
	}
	return point, nil
}

// storageRef is a configured storage with its label (its directory name on
// restore).
type storageRef struct {
	*config.Storage
	Label string
}

// storageRefs labels every configured storage: "<zeo>-<name>" for the
// storages of a zeo block, the id for top-level ones; duplicates get a
// number.
func storageRefs(cfg *config.Config) []*storageRef {
	labels := daemon.StorageLabels(cfg)
	refs := make([]*storageRef, 0, len(cfg.Storages))
	for i, s := range cfg.Storages {
		refs = append(refs, &storageRef{Storage: s, Label: labels[i]})
	}
	return refs
}

func labels(refs []*storageRef) string {
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.Label
	}
	return strings.Join(names, ", ")
}
