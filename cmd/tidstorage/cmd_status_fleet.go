package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/tidstorage/tidstorage/fleet"
)

// printFleet prints the fleet section of 'tidstorage status' from /fleet:
// nothing in the all-in-one role (f nil, err nil).
func printFleet(w io.Writer, d *statusdoc.StatusDoc, f *statusdoc.FleetDoc, err error) {
	switch {
	case err != nil:
		fmt.Fprintf(w, "\nFleet: cannot read the link's figures: %v\n", err)
	case f == nil:
	case f.Link != nil:
		printLink(w, d.Time, f.Link)
	default:
		printSidecars(w, d.Time, f.Sidecars)
	}
}

// upDown says since when a link is up or down.
func upDown(now time.Time, connected bool, since time.Time) string {
	state := "connected"
	if !connected {
		state = "DOWN"
	}
	if since.IsZero() {
		return state
	}
	ago := age(now.Sub(since).Seconds())
	if connected {
		return fmt.Sprintf("%s since %s UTC (%s)", state, since.UTC().Format("2006-01-02 15:04:05"), ago)
	}
	return fmt.Sprintf("%s since %s UTC (%s ago)", state, since.UTC().Format("2006-01-02 15:04:05"), ago)
}

// printSidecars: a fleet tracker's sidecars, one line each.
func printSidecars(w io.Writer, now time.Time, sc []fleet.SourceStats) {
	up := 0
	for _, s := range sc {
		if s.Connected {
			up++
		}
	}
	if len(sc) == 0 {
		fmt.Fprintf(w, "\nFleet: tracker; no sidecar has connected since it started\n")
		return
	}
	fmt.Fprintf(w, "\nFleet: tracker, %d sidecar%s (%d connected):\n", len(sc), plural(len(sc)), up)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  SIDECAR\tSTATE\tAPPLIED\tNEWEST REPORT\tLAG\tGAPS\tRESTARTS\tLAST ERROR\n")
	for _, s := range sc {
		newest, lastErr := "-", "-"
		if !s.LastReport.IsZero() {
			newest = age(now.Sub(s.LastReport).Seconds()) + " ago"
		}
		if !s.Connected && s.LastError != "" {
			lastErr = s.LastError
		}
		state := upDown(now, s.Connected, s.Since)
		switch {
		case s.Expected:
			state = "DOWN: expected, not back since the tracker started " + age(now.Sub(s.Since).Seconds()) + " ago"
		case s.Resending:
			state += ", resending"
		case !s.Connected && s.Connects == 0 && s.Refused > 0:
			state = "REFUSED"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\n", s.Source, state,
			s.AppliedReports, newest, age(s.LagSeconds), s.Gaps, s.Restarts, lastErr)
	}
	tw.Flush()
	for _, s := range sc {
		if s.Refused > 0 && now.Sub(s.LastRefusedAt) < 10*time.Minute {
			fmt.Fprintf(w, "!! %s: %d stream%s refused under this name, the last %s ago, from %s\n", s.Source, s.Refused,
				plural(int(s.Refused)), age(now.Sub(s.LastRefusedAt).Seconds()), s.LastRefused)
		}
	}
	for _, s := range sc {
		if s.Expected || (!s.Connected && s.Connects > 0) {
			fmt.Fprintf(w, "  %s is down: its commits wait for its resend up to a minute before they are reported unaccounted, "+
				"and accept-partial waits for it; if it is gone for good: tidstorage fleet retire %s\n", s.Source, s.Source)
		}
	}
	for _, s := range sc {
		if s.Gaps > 0 {
			fmt.Fprintf(w, "  %s declared %d gap%s in its reports: the commits of those periods are held as unaccounted until accepted\n",
				s.Source, s.Gaps, plural(int(s.Gaps)))
		}
	}
}

// printLink: a sidecar's link to its tracker.
func printLink(w io.Writer, now time.Time, l *fleet.LinkStats) {
	fmt.Fprintf(w, "\nFleet: sidecar %q reporting to the tracker at %s (a sidecar publishes nothing: watch the tracker's status)\n",
		l.Source, l.Tracker)
	fmt.Fprintf(w, "  link: %s, %d connect%s", upDown(now, l.Connected, l.Since), l.Connects, plural(int(l.Connects)))
	if l.LastError != "" {
		fmt.Fprintf(w, "; last error: %s", l.LastError)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  pending: %d of %d reports", l.Pending, l.Capacity)
	if l.Pending > 0 {
		fmt.Fprintf(w, ", the oldest %s old", age(l.LagSeconds))
	}
	if l.BufferFile != "" {
		fmt.Fprintf(w, "; buffer file %s, %s", l.BufferFile, sizeText(l.BufferSize))
	} else {
		fmt.Fprintf(w, "; no buffer file (a restart is a gap)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  reports: %d observed, %d sent, %d acknowledged, %d resent, %d dropped; %d gap%s declared\n",
		l.Observed, l.Sent, l.AckedReports, l.Resent, l.Dropped, l.Gaps, plural(int(l.Gaps)))
	if l.Capacity > 0 && l.Pending*5 >= l.Capacity*4 {
		fmt.Fprintf(w, "!! the send buffer is %d%% full: past it reports are dropped, a gap whose commits the tracker holds until accepted\n",
			l.Pending*100/l.Capacity)
	}
	if l.Refused != "" {
		fmt.Fprintf(w, "!! the tracker refuses this sidecar (it retries; its reports stay buffered): %s\n", l.Refused)
	}
	if l.BufferError != "" {
		fmt.Fprintf(w, "!! the buffer file is no longer written (reports in memory only: a restart is a gap): %s\n", l.BufferError)
	}
}
