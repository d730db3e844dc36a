package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tidstorage/tidstorage/cmd/daemon"
	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/internal/statusdoc"
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
	fs.StringVar(&p.statusFile, "status-file", "", "take the point from the last line of status `FILE` (default: the running daemon's current point, else the last line of the configuration's status_file)")
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
		point, err := dumpPoint(p.dump, p.timeout)
		if err != nil {
			return nil, "", err
		}
		return point, "dump " + p.dump, nil
	}
	if p.statusFile != "" {
		sp, err := readStatusPoint(p.statusFile, warn)
		if err != nil {
			return nil, "", err
		}
		return sp.point, sp.source, nil
	}
	// The configuration's own daemon first (its current point is at least
	// as new as the status file's last line, which is written only every
	// burst_period), then its status file.
	live, liveErr := askDaemon(cfg, min(p.timeout, 3*time.Second))
	var sp *statusPoint
	var spErr error
	if cfg.StatusFile != "" {
		sp, spErr = readStatusPoint(cfg.StatusFile, warn)
	}
	if live != nil {
		for _, st := range cfg.Storages {
			if _, ok := live.point[st.ID]; !ok {
				fmt.Fprintf(warn, "warning: the daemon at %s does not publish %s: it is not this configuration's, or has not published it yet; not using its point\n", live.where, st.ID)
				live, liveErr = nil, fmt.Errorf("the daemon at %s does not publish %s", live.where, st.ID)
				break
			}
		}
	}
	if live != nil {
		if sp != nil {
			if why := notAhead(live.point, sp.point); why != "" {
				fmt.Fprintf(warn, "warning: the daemon at %s is not the one writing %s (%s): using the status file\n", live.where, cfg.StatusFile, why)
				return sp.point, sp.source, nil
			}
		}
		return live.point, live.source, nil
	}
	switch {
	case cfg.StatusFile == "" && liveErr != nil:
		return nil, "", fmt.Errorf("no point: the configuration's daemon cannot be asked (%v) and it has no status_file; give --status-file, --dump or --tid", liveErr)
	case cfg.StatusFile == "":
		return nil, "", errors.New("no point: give --status-file, --dump or --tid (the configuration has no status_file)")
	case spErr != nil:
		return nil, "", spErr
	}
	fmt.Fprintf(warn, "note: the point is the status file's last line, written %s ago; the daemon could not be asked for a newer one (%v). "+
		"It writes a line every burst_period (%s) after commits and a full one every full_dump_period (%s): for the newest point, "+
		"run this where the daemon's admin or classic endpoint answers, or give --dump HOST:PORT\n",
		ageText(time.Since(sp.time)), liveErr, cfg.BurstPeriod, cfg.FullDumpPeriod)
	return sp.point, sp.source, nil
}

// statusPoint is the last point of a status file.
type statusPoint struct {
	point  map[string]txn.TID
	source string
	time   time.Time // when the line was written
}

func readStatusPoint(path string, warn io.Writer) (*statusPoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := statusfile.Replay(f, statusfile.ReplayOptions{})
	for _, w := range res.Warnings {
		fmt.Fprintf(warn, "warning: %s: %s\n", path, w)
	}
	if err != nil {
		return nil, err
	}
	if res.Applied == 0 {
		return nil, fmt.Errorf("%s holds no point yet", path)
	}
	point := make(map[string]txn.TID, len(res.Point))
	for k, v := range res.Point {
		point[k] = txn.TID(v)
	}
	when := time.Unix(0, int64(res.Time*1e9)).UTC()
	return &statusPoint{point: point, time: when,
		source: fmt.Sprintf("status file %s, line %d (%s)", path, res.LastLine, when.Format(time.RFC3339))}, nil
}

// ageText rounds a duration for people.
func ageText(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second).String()
}

// livePoint is the current point of a running daemon.
type livePoint struct {
	point         map[string]txn.TID
	where, source string
}

// askDaemon asks the daemon of cfg for its current published point: its
// admin endpoint's /status (with the token when it can be read: the status
// file it writes is then checked to be cfg's), else its classic DUMP. nil
// and why when neither answers with a bootstrapped point.
func askDaemon(cfg *config.Config, timeout time.Duration) (*livePoint, error) {
	var why []string
	if base, err := adminBase(cfg); err == nil {
		token, _ := statusdoc.ReadToken(cfg.Admin.TokenFile)
		cl := &adminClient{base: base, http: &http.Client{Timeout: timeout}, token: token}
		doc, _, err := cl.status()
		switch {
		case err != nil:
			why = append(why, fmt.Sprintf("admin %s: %v", strings.TrimPrefix(base, "http://"), rootCause(err)))
		case !doc.Bootstrapped:
			why = append(why, fmt.Sprintf("admin %s: not bootstrapped yet", strings.TrimPrefix(base, "http://")))
		case token != "" && doc.StatusFile != nil && filepath.Clean(doc.StatusFile.Path) != filepath.Clean(cfg.StatusFile):
			why = append(why, fmt.Sprintf("admin %s: that daemon writes %s, not %s", strings.TrimPrefix(base, "http://"), doc.StatusFile.Path, cfg.StatusFile))
		default:
			point := map[string]txn.TID{}
			for _, s := range doc.Storages {
				if s.Published != nil {
					point[s.ID] = s.Published.Int
				}
			}
			if len(point) > 0 {
				return &livePoint{point: point, where: base,
					source: fmt.Sprintf("the running daemon's current point (%s/status, %s)", base, doc.Time.UTC().Format(time.RFC3339))}, nil
			}
			why = append(why, fmt.Sprintf("admin %s: no published point", strings.TrimPrefix(base, "http://")))
		}
	} else {
		why = append(why, "admin: "+err.Error())
	}
	if addr, err := classicAddr(cfg); err == nil {
		point, err := dumpPoint(addr, timeout)
		if err == nil {
			return &livePoint{point: point, where: addr,
				source: fmt.Sprintf("the running daemon's current point (DUMP at %s, %s)", addr, time.Now().UTC().Format(time.RFC3339))}, nil
		}
		why = append(why, fmt.Sprintf("classic %s: %v", addr, rootCause(err)))
	} else {
		why = append(why, "classic: "+err.Error())
	}
	return nil, errors.New(strings.Join(why, "; "))
}

// rootCause drops the wrapping of a network error down to its reason
// ("connection refused").
func rootCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var sys *os.SyscallError
		if errors.As(op.Err, &sys) {
			return sys.Err
		}
		return op.Err
	}
	return err
}

// dumpPoint is a classic server's DUMP, refused before its bootstrap.
func dumpPoint(addr string, timeout time.Duration) (map[string]txn.TID, error) {
	cl, err := classic.Dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	raw, err := cl.Dump()
	if err != nil {
		return nil, err
	}
	boot, err := cl.Bootstraped()
	if err != nil {
		return nil, err
	}
	cl.Quit()
	if !boot || len(raw) == 0 {
		return nil, fmt.Errorf("%s has published no point yet (bootstrap not finished)", addr)
	}
	point := make(map[string]txn.TID, len(raw))
	for k, v := range raw {
		point[k] = txn.TID(v)
	}
	return point, nil
}

// notAhead says why live cannot be the current point of the daemon that
// wrote file (a storage missing or behind: another daemon answers at that
// address), or "".
func notAhead(live, file map[string]txn.TID) string {
	ids := make([]string, 0, len(file))
	for id := range file {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		v, ok := live[id]
		switch {
		case !ok:
			return fmt.Sprintf("it does not publish %s", id)
		case v < file[id]:
			return fmt.Sprintf("it publishes %s at %s, behind the file's %s", id, v.Hex(), file[id].Hex())
		}
	}
	return ""
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

// storageRefs labels every configured storage (docs/backup.md, "Names"):
// its id when that is a plain name (letters, digits, ".", "_", "-"), so
// that a storage has one name everywhere; otherwise (a default id, the
// repr of a tuple) "<zeo>-<name>" for the storages of a zeo block and the
// id's safe form for top-level ones; duplicates get a number.
func storageRefs(cfg *config.Config) []*storageRef {
	labels := daemon.StorageLabels(cfg)
	refs := make([]*storageRef, 0, len(cfg.Storages))
	for i, s := range cfg.Storages {
		refs = append(refs, &storageRef{Storage: s, Label: labels[i]})
	}
	return refs
}

// storageDisplay names a storage for people: its id, and the label that
// backups, restores and metrics give it when that is another name
// (docs/backup.md, "Names").
func storageDisplay(id, label string) string {
	if label == "" || label == id {
		return id
	}
	return label + " = " + id
}

func labels(refs []*storageRef) string {
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.Label
	}
	return strings.Join(names, ", ")
}
