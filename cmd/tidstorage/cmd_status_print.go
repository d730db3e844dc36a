package main

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tidstorage/tidstorage/internal/statusdoc"
)

// The text form of the /status document ('tidstorage status'), one
// function per section.

const tsLayout = "2006-01-02 15:04:05.000000"

// age formats seconds for people: whole seconds past a minute.
func age(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d < 0:
		return "-" + age(-sec)
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func tidText(t *statusdoc.TIDDoc) string {
	if t == nil {
		return "-"
	}
	if t.Int == 0 {
		return t.Hex + "  (empty storage)"
	}
	return t.Hex + "  " + t.Time.UTC().Format(tsLayout)
}

// printOptions tune the text form.
type printOptions struct {
	// all lists every unaccounted commit; otherwise more than
	// commitsListed of one storage are summarised (count, first and last,
	// a sample).
	all bool
}

// commitsListed is how many unaccounted commits of one storage are listed
// one per line before they are summarised.
const commitsListed = 5

func printStatus(w io.Writer, d *statusdoc.StatusDoc, base, hint string, opt printOptions) {
	printHeader(w, d, base)
	printStorages(w, d)
	printInFlight(w, d)
	printPartials(w, d, hint, opt)
	printHeld(w, d, hint, opt)
	printOtherPins(w, d, opt)
	printWatchers(w, d)
	printParts(w, d)
}

func printHeader(w io.Writer, d *statusdoc.StatusDoc, base string) {
	fmt.Fprintf(w, "tidstorage %s at %s, %s UTC\n", d.Version, base, d.Time.UTC().Format("2006-01-02 15:04:05"))
	switch {
	case !d.Bootstrapped && d.Proxy == nil && d.ClassicEndpoint != nil:
		fmt.Fprintf(w, "Bootstrap: NOT DONE: classic-only, nothing is published until every storage has had a commit of a transaction begun after the start\n")
	case !d.Bootstrapped:
		fmt.Fprintf(w, "Bootstrap: NOT DONE: nothing is published until every storage has a known TID\n")
	case d.CleanStart && d.PreviousRun == "none":
		fmt.Fprintf(w, "Bootstrap: done (first start: the status file was new or empty)\n")
	case d.CleanStart && d.PreviousRun == "unknown":
		fmt.Fprintf(w, "Bootstrap: done (no status file, so how a previous run stopped is not tracked)\n")
	case d.CleanStart:
		fmt.Fprintf(w, "Bootstrap: done (the previous run stopped cleanly)\n")
	case d.Journal != nil && d.Journal.Replayed > 0:
		fmt.Fprintf(w, "Bootstrap: done, after an UNCLEAN stop: the journal was replayed (%d inputs); the storages' history resolves what was in flight, and whatever it cannot account for is held below\n", d.Journal.Replayed)
	default:
		fmt.Fprintf(w, "Bootstrap: done, after an UNCLEAN stop: the live files may hold half a transaction from then; the last coherent point before it is in the status file\n")
	}
	if d.TrackerFailure != "" {
		fmt.Fprintf(w, "!! TRACKER FAILED: %s\n!! Publication stopped at the last good point below; traffic is still relayed. Restart tidstorage.\n", d.TrackerFailure)
	}
	if d.PublicationHeld != "" {
		fmt.Fprintf(w, "!! PUBLICATION HELD: %s.\n!! The point below stays where it was until the state directory takes the files again (tried every second); ZODB traffic is relayed as usual.\n", d.PublicationHeld)
	}
}

func printStorages(w io.Writer, d *statusdoc.StatusDoc) {
	fmt.Fprintf(w, "\nStorages:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(d.Storages) == 0 {
		fmt.Fprintf(w, "  none known yet\n")
	} else {
		fmt.Fprintf(tw, "  STORAGE\tPUBLISHED TID\tTIME (UTC)\tLAG\tSTATE\n")
	}
	watching := false
	for _, s := range d.Storages {
		watching = watching || s.Watched
	}
	hist := map[string]*statusdoc.HistoryDoc{}
	for i := range d.History {
		hist[d.History[i].Storage] = &d.History[i]
	}
	names := map[string]string{}
	for _, s := range d.Storages {
		names[s.ID] = storageDisplay(s.ID, s.Label)
	}
	for _, s := range d.Storages {
		pub, when, lag := "-", "-", "-"
		switch {
		case s.Published != nil && s.Published.Int == 0:
			// An empty storage: TID 0 has no meaningful time or lag.
			pub, when = s.Published.Hex, "empty"
		case s.Published != nil:
			pub, when = s.Published.Hex, s.Published.Time.UTC().Format(tsLayout)
			if s.LagSeconds != nil {
				lag = age(*s.LagSeconds)
			}
		}
		state := storageState(&s, d, watching, names)
		if h := hist[s.ID]; h != nil && !h.Connected && h.LastError != "" {
			// The reason first: "idle" would hide that its ZEO is unreachable.
			down := "ZEO UNREACHABLE (history watcher): " + h.LastError
			if len(state) == 1 && state[0] == idleState {
				state = nil
			}
			state = append([]string{down}, state...)
		}
		if len(state) == 1 && state[0] == idleState {
			// Lag is how far publication is behind the storage: none when
			// its last commit is published, however long ago that was.
			lag = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", names[s.ID], pub, when, lag, strings.Join(state, ", "))
	}
	tw.Flush()
}

// idleState is the state of a storage whose last commit is published.
const idleState = "idle: its last commit is published"

// storageState describes a storage's row; watching: some storage's history
// is watched (so that one that is not is worth saying).
func storageState(s *statusdoc.StorageDoc, d *statusdoc.StatusDoc, watching bool, names map[string]string) []string {
	var state []string
	if s.HeldByUnaccounted {
		state = append(state, fmt.Sprintf("HELD by %d unaccounted commit%s", len(s.Unaccounted), plural(len(s.Unaccounted))))
	}
	if s.BlindConnections > 0 {
		state = append(state, fmt.Sprintf("BLIND (%d connection%s)", s.BlindConnections, plural(s.BlindConnections)))
	}
	if s.Busy {
		// Its group counts transactions in flight and pins alike.
		busy := "busy: waits for a transaction or pin to end"
		if s.Group >= 0 && s.Group < len(d.Groups) {
			g := d.Groups[s.Group]
			if g.InFlight > 1 {
				busy = fmt.Sprintf("busy: waits for %d transactions or pins to end", g.InFlight)
			}
			var with []string
			for _, o := range g.Storages {
				if o != s.ID {
					with = append(with, cmp.Or(names[o], o))
				}
			}
			if len(with) > 0 {
				busy += ", publishes together with " + strings.Join(with, " and ")
			}
		}
		state = append(state, busy)
	}
	if s.Transient != nil && (s.Published == nil || s.Transient.Int != s.Published.Int) {
		state = append(state, "committed up to "+s.Transient.Hex)
	}
	if s.AwaitingHistory > 0 {
		state = append(state, fmt.Sprintf("%d awaiting history", s.AwaitingHistory))
	}
	switch {
	case s.WarnOnly && s.UnaccountedTotal > 0:
		state = append(state, fmt.Sprintf("warn-only (%d unaccounted commit%s reported, not held)", s.UnaccountedTotal, plural(int(s.UnaccountedTotal))))
	case s.WarnOnly:
		state = append(state, "warn-only")
	case watching && !s.Watched:
		state = append(state, "history not watched")
	}
	if len(state) == 0 {
		switch {
		case s.Published == nil:
			state = append(state, "no published TID yet")
		case s.Published.Int == 0:
			state = append(state, "empty (no transaction yet)")
		default:
			state = append(state, idleState)
		}
	}
	return state
}

func printInFlight(w io.Writer, d *statusdoc.StatusDoc) {
	fmt.Fprintf(w, "\nIn flight: %d participation%s, %d classic transaction%s\n",
		len(d.Participations), plural(len(d.Participations)), len(d.Classic), plural(len(d.Classic)))
	for _, p := range d.Participations {
		fmt.Fprintf(w, "  participation %d on %s: %s, for %s\n", p.ID, p.Storage, p.State, age(p.AgeSeconds))
	}
	for _, t := range d.Classic {
		fmt.Fprintf(w, "  classic %s on %s: for %s\n", t.ID, strings.Join(t.Storages, ", "), age(t.AgeSeconds))
	}
}

func printPartials(w io.Writer, d *statusdoc.StatusDoc, hint string, opt printOptions) {
	partials := d.PartialPins()
	if len(partials) == 0 {
		return
	}
	fmt.Fprintf(w, "\n!! %d PARTIAL COMMIT%s: a transaction committed on some storages and not on others.\n",
		len(partials), pluralUpper(len(partials)))
	fmt.Fprintf(w, "!! Their published TIDs stay where they are until you decide (see docs/admin.md).\n")
	for _, p := range partials {
		printPin(w, &p, "!! ", d.Time, opt)
		fmt.Fprintf(w, "   accept the live state as the new baseline: tidstorage accept-partial %s --yes %d\n", hint, p.ID)
	}
}

// printHeld lists the storages held by unaccounted commits, with their
// pins (absent while the commits wait for a late report).
func printHeld(w io.Writer, d *statusdoc.StatusDoc, hint string, opt printOptions) {
	held := d.HeldStorages()
	if len(held) == 0 {
		return
	}
	fmt.Fprintf(w, "\n!! %d STORAGE%s HELD by commits that nothing accounted for: the storage's own history has them, no\n",
		len(held), pluralUpper(len(held)))
	fmt.Fprintf(w, "!! proxied client and no classic COMMIT reported them (a client that bypasses the proxy, or a crash of\n")
	fmt.Fprintf(w, "!! tidstorage). Publication stays just below the first until they are accounted for or you decide; the\n")
	fmt.Fprintf(w, "!! ERROR log line \"unaccounted commit\" names each one's user and description (docs/admin.md).\n")
	pins := d.UnaccountedPins()
	for _, s := range held {
		fmt.Fprintf(w, "!! %s: published %s\n", storageDisplay(s.ID, s.Label), tidText(s.Published))
		printCommits(w, "!!   ", s.Unaccounted, d.Time, opt)
		pinned := false
		for _, p := range pins {
			if len(p.Storages) == 1 && p.Storages[0] == s.ID {
				pinned = true
				fmt.Fprintf(w, "   pin %d (unaccounted) since %s UTC covers the commits up to %s\n", p.ID,
					p.Since.UTC().Format("2006-01-02 15:04:05"), p.Upto.Hex)
				fmt.Fprintf(w, "   once you have decided they are whole or acceptable: tidstorage accept-partial %s --yes %d\n", hint, p.ID)
			}
		}
		if !pinned {
			fmt.Fprintf(w, "   not reported yet: waiting for a late report (unaccounted_grace, or a classic transaction in flight)\n")
		}
	}
}

func printOtherPins(w io.Writer, d *statusdoc.StatusDoc, opt printOptions) {
	var others []statusdoc.PinDoc
	for _, p := range d.Pins {
		if p.Kind != "partial" && p.Kind != "unaccounted" {
			others = append(others, p)
		}
	}
	if len(others) == 0 {
		return
	}
	fmt.Fprintf(w, "\nOther pins (holding published TIDs back):\n")
	for _, p := range others {
		printPin(w, &p, "  ", d.Time, opt)
	}
}

// printWatchers lists the storages' history watchers (ground truth).
func printWatchers(w io.Writer, d *statusdoc.StatusDoc) {
	if len(d.History) == 0 {
		return
	}
	fmt.Fprintf(w, "\nHistory watchers (each storage's own commits, read from its ZEO server):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  STORAGE\tSTATE\tSINCE (UTC)\tLAST TID\tLAG\tRECONNECTS\tLAST ERROR\n")
	for _, h := range d.History {
		state, since, last, lastErr := "connected", "-", "-", "-"
		if !h.Connected {
			state = "DISCONNECTED"
		}
		if h.Since != nil {
			since = h.Since.UTC().Format("2006-01-02 15:04:05")
		}
		if h.LastTID != nil {
			last = h.LastTID.Hex
		}
		if h.LastError != "" {
			lastErr = h.LastError
			if h.LastErrorAt != nil {
				lastErr += fmt.Sprintf(" (%s ago)", age(d.Time.Sub(*h.LastErrorAt).Seconds()))
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%s\n", h.Storage, state, since, last, age(h.LagSeconds), h.Reconnects, lastErr)
	}
	tw.Flush()
}

// printParts prints one line per running part and the tracker's counters.
func printParts(w io.Writer, d *statusdoc.StatusDoc) {
	fmt.Fprintln(w)
	if p := d.Proxy; p != nil {
		fmt.Fprintf(w, "Proxy: %d connection%s open (%d accepted); 2PC: %d begun, %d committed, %d aborted, %d failed votes, %d in doubt; %d decode errors\n",
			p.ConnectionsOpen, plural(int(p.ConnectionsOpen)), p.ConnectionsTotal, p.Begins, p.Commits, p.Aborts,
			p.VotesFailed, p.InDoubt, p.DecodeErrors)
	}
	if ce := d.ClassicEndpoint; ce != nil {
		fmt.Fprintf(w, "Classic endpoint: %d connection%s active (%d accepted, %d refused, %d denied); %d BEGIN, %d COMMIT, %d ABORT, %d DUMP; %d protocol errors\n",
			ce.ConnectionsActive, plural(int(ce.ConnectionsActive)), ce.ConnectionsAccepted, ce.ConnectionsRefused, ce.ConnectionsDenied,
			ce.Commands["begin"], ce.Commands["commit"], ce.Commands["abort"], ce.Commands["dump"], ce.ProtocolErrors)
		if ce.ConnectionsIdleClosed+ce.ConnectionsEvicted > 0 {
			fmt.Fprintf(w, "  idle connections closed: %d after idle_timeout, %d to admit a new one (max_connections reached)\n",
				ce.ConnectionsIdleClosed, ce.ConnectionsEvicted)
		}
	}
	if sf := d.StatusFile; sf != nil {
		printStatusFile(w, sf)
	}
	if j := d.Journal; j != nil {
		printJournal(w, j)
	}
	if a := d.Archive; a != nil {
		printArchive(w, a, d.Time)
	}
	k := d.Counters
	fmt.Fprintf(w, "Tracker: %d publications, %d partial commits, %d unaccounted commits, %d warnings, %d criticals, %d pins accepted\n",
		k.Publications, k.Partials, k.Unaccounted, k.Warnings, k.Criticals, k.PinsAccepted)
}

func printStatusFile(w io.Writer, sf *statusdoc.StatusFileDoc) {
	if sf.FileLines >= sf.Lines {
		fmt.Fprintf(w, "Status file: %s, %d line%s (%d written since start)", sf.Path, sf.FileLines, plural(int(sf.FileLines)), sf.Lines)
	} else { // a daemon that does not count the file's lines
		fmt.Fprintf(w, "Status file: %s, %d line%s written since start", sf.Path, sf.Lines, plural(int(sf.Lines)))
	}
	if sf.LastWrite != nil {
		fmt.Fprintf(w, ", last at %s UTC", sf.LastWrite.UTC().Format("2006-01-02 15:04:05"))
	}
	if sf.Errors > 0 {
		fmt.Fprintf(w, "; %d WRITE ERROR%s, last: %s", sf.Errors, pluralUpper(int(sf.Errors)), sf.LastError)
	}
	if sf.Broken != "" {
		fmt.Fprintf(w, "; APPENDING STOPPED until restart: %s", sf.Broken)
	}
	if sf.Epochs > 0 {
		fmt.Fprintf(w, "; a new epoch began at start (the storages went back), the previous one is %s", sf.LastAside)
	}
	fmt.Fprintln(w)
}

func printJournal(w io.Writer, j *statusdoc.JournalDoc) {
	fmt.Fprintf(w, "Journal: %s, %s, %d record%s, %d rotation%s", j.Path, sizeText(j.SizeBytes),
		j.Records, plural(int(j.Records)), j.Rotations, plural(int(j.Rotations)))
	if j.Replayed > 0 {
		fmt.Fprintf(w, "; %d inputs replayed at start", j.Replayed)
	}
	if j.Damage != "" {
		fmt.Fprintf(w, "; a DAMAGED TAIL was cut at start: %s", j.Damage)
	}
	if j.Errors > 0 {
		fmt.Fprintf(w, "; %d ERROR%s", j.Errors, pluralUpper(int(j.Errors)))
	}
	if j.Broken != "" {
		fmt.Fprintf(w, "; JOURNALING STOPPED, publication held, until a rotation succeeds (tried every second): %s", j.Broken)
	}
	if j.Reserve != "" {
		fmt.Fprintf(w, "; the reserve file for a rotation on a full disk is missing: %s", j.Reserve)
	}
	fmt.Fprintln(w)
}

func printArchive(w io.Writer, a *statusdoc.ArchiveDoc, now time.Time) {
	fmt.Fprintf(w, "Archive: %s, %s", a.Store, a.State)
	if !a.LastShipment.IsZero() {
		fmt.Fprintf(w, "; last shipment %s ago (point of %s UTC), %d this run, %s", age(now.Sub(a.LastShipment).Seconds()),
			a.LastPoint.UTC().Format("2006-01-02 15:04:05.000"), a.Shipments, sizeText(a.BytesShipped))
	}
	fmt.Fprintf(w, "; lag %s, %s", age(a.LagSeconds), sizeText(a.LagBytes))
	if a.Failing {
		fmt.Fprintf(w, "; FAILING (%d error%s): %s", a.Errors, plural(int(a.Errors)), a.LastError)
	} else if a.Errors > 0 {
		fmt.Fprintf(w, "; %d error%s before, last: %s", a.Errors, plural(int(a.Errors)), a.LastError)
	}
	fmt.Fprintln(w)
}

// sizeText formats a byte count in binary units.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n)/unit, "KiB"
	for _, next := range []string{"MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, u = v/unit, next
	}
	return fmt.Sprintf("%.1f %s", v, u)
}

// printCommits prints unaccounted commits, oldest first: one per line when
// they are few or all are asked for, else a summary: how many, the first and
// the last with their times, and a sample of the first few.
func printCommits(w io.Writer, prefix string, commits []statusdoc.TIDDoc, now time.Time, opt printOptions) {
	if opt.all || len(commits) <= commitsListed {
		for _, u := range commits {
			fmt.Fprintf(w, "%sunaccounted commit %s (%s ago)\n", prefix, tidText(&u), age(now.Sub(u.Time).Seconds()))
		}
		return
	}
	first, last := commits[0], commits[len(commits)-1]
	fmt.Fprintf(w, "%s%d unaccounted commits over %s, from %s (%s ago) to %s (%s ago)\n", prefix, len(commits),
		age(last.Time.Sub(first.Time).Seconds()), tidText(&first), age(now.Sub(first.Time).Seconds()), tidText(&last), age(now.Sub(last.Time).Seconds()))
	sample := make([]string, 0, commitsListed-2)
	for _, u := range commits[:commitsListed-2] {
		sample = append(sample, u.Hex)
	}
	fmt.Fprintf(w, "%s  the first ones: %s … (--all lists every one; the ERROR log line \"unaccounted commit\" names each)\n", prefix, strings.Join(sample, ", "))
}

// printPin prints a pin's description, each line prefixed.
func printPin(w io.Writer, p *statusdoc.PinDoc, prefix string, now time.Time, opt printOptions) {
	fmt.Fprintf(w, "%spin %d (%s) since %s UTC (%s ago) on %s\n", prefix, p.ID, p.Kind,
		p.Since.UTC().Format("2006-01-02 15:04:05"), age(p.AgeSeconds), strings.Join(p.Storages, ", "))
	fmt.Fprintf(w, "%s  %s\n", prefix, p.Reason)
	for _, h := range p.Held {
		fmt.Fprintf(w, "%s  held at %s: %s\n", prefix, h.Storage, tidText(h.Published))
	}
	if p.Txn != "" {
		fmt.Fprintf(w, "%s  classic transaction %s\n", prefix, p.Txn)
	}
	if len(p.Waiting) > 0 {
		fmt.Fprintf(w, "%s  waiting for a commit on %s\n", prefix, strings.Join(p.Waiting, ", "))
	}
	printCommits(w, prefix+"  ", p.Unaccounted, now, opt)
}

func pluralUpper(n int) string { return strings.ToUpper(plural(n)) }
